import { parseYamlFile, type YamlDoc } from './yaml-docs.ts';
import { listFiles } from './paths.ts';

/** The slice of a Kubernetes object the consistency checks read; the schema check covers the rest. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } };
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  hostPort?: number;
  protocol?: string;
}

export interface Probe {
  httpGet?: { path: string; port: number | string };
}

export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  ports?: ContainerPort[];
  env?: EnvVar[];
  envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  resources?: { limits?: Record<string, string | number>; requests?: Record<string, string | number> };
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}

export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Array<{ name: string; [k: string]: unknown }>;
  nodeSelector?: Record<string, string>;
  tolerations?: Array<{ key?: string; operator?: string; effect?: string }>;
  runtimeClassName?: string;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
}

export interface PodTemplate {
  metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
  spec: PodSpec;
}

export interface Workload extends K8sObject {
  spec: { selector: { matchLabels: Record<string, string> }; template: PodTemplate } & Record<string, unknown>;
}

export const WORKLOAD_KINDS = new Set(['Deployment', 'DaemonSet', 'StatefulSet']);

/** Every document of every YAML file under deploy/k3s. */
export function k3sDocs(): YamlDoc[] {
  return listFiles('deploy/k3s', (p) => /\.ya?ml$/.test(p)).flatMap(parseYamlFile);
}

export function k3sObjects(): Array<K8sObject & { file: string }> {
  return k3sDocs().map((d) => ({ ...(d.value as K8sObject), file: d.file }));
}

export function workloads(): Array<Workload & { file: string }> {
  return k3sObjects().filter((o): o is Workload & { file: string } => WORKLOAD_KINDS.has(o.kind));
}

export function allContainers(w: Workload): Container[] {
  return [...(w.spec.template.spec.initContainers ?? []), ...w.spec.template.spec.containers];
}

export function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** Resolves a probe or Service target port (number or container port name) to a number. */
export function resolvePort(container: Container, port: number | string): number | undefined {
  if (typeof port === 'number') return port;
  return container.ports?.find((p) => p.name === port)?.containerPort;
}
