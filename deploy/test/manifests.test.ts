import { describe, expect, it } from 'vitest';
import { listFiles, readRepoFile } from './support/paths.ts';
import { parseYamlFile, yamlFiles } from './support/yaml-docs.ts';
import { allContainers, k3sObjects, resolvePort, selects, workloads, type K8sObject } from './support/k8s.ts';

interface Validatable {
  validate(): void;
}
type ModelClass = new (data: unknown) => Validatable;

/** kubernetes-models class for an object's apiVersion and kind (core group under `v1/`). */
async function modelFor(apiVersion: string, kind: string): Promise<ModelClass> {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : [undefined, apiVersion];
  const path = group ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/${version}/${kind}`;
  const mod = (await import(path)) as Record<string, ModelClass>;
  const cls = mod[kind];
  if (!cls) throw new Error(`no schema for ${apiVersion} ${kind}`);
  return cls;
}

const CLUSTER_SCOPED = new Set(['Namespace', 'RuntimeClass']);

describe('deploy files parse', () => {
  it('every YAML file under deploy/ parses without errors, warnings or duplicate keys', () => {
    const files = yamlFiles();
    expect(files.length).toBeGreaterThan(5);
    for (const file of files) expect(() => parseYamlFile(file), file).not.toThrow();
  });

  it('every JSON file under deploy/ parses', () => {
    const files = listFiles('deploy', (p) => p.endsWith('.json'));
    expect(files).toContain('deploy/grafana/flotilla-dashboard.json');
    for (const file of files) expect(() => JSON.parse(readRepoFile(file)) as unknown, file).not.toThrow();
  });
});

describe('K3s manifests', () => {
  const objects = k3sObjects();

  it('every object validates against the Kubernetes schema of its apiVersion and kind', async () => {
    expect(objects.length).toBeGreaterThan(10);
    for (const obj of objects) {
      const Model = await modelFor(obj.apiVersion, obj.kind);
      const where = `${obj.file}: ${obj.kind} ${obj.metadata?.name}`;
      expect(() => new Model(obj).validate(), where).not.toThrow();
    }
  });

  it('the schema check refuses a malformed object (a port given as a string)', async () => {
    const Deployment = await modelFor('apps/v1', 'Deployment');
    const bad = { metadata: { name: 'x' }, spec: { selector: { matchLabels: { a: 'b' } }, template: { spec: { containers: [{ name: 'c', image: 'i', ports: [{ containerPort: '8080' }] }] } } } };
    expect(() => new Deployment(bad).validate()).toThrow(/containerPort/);
  });

  it('every object is named, and every namespaced object lives in the flotilla namespace', () => {
    const namespaces = new Set(objects.filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name));
    expect(namespaces).toEqual(new Set(['flotilla']));
    for (const obj of objects) {
      expect(obj.metadata?.name, obj.file).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      if (!CLUSTER_SCOPED.has(obj.kind)) expect(obj.metadata.namespace, `${obj.file} ${obj.kind} ${obj.metadata.name}`).toBe('flotilla');
    }
  });

  it('no two objects share a kind and name', () => {
    const keys = objects.map((o) => `${o.kind}/${o.metadata.name}`);
    expect(keys.length).toBe(new Set(keys).size);
  });

  it('every workload selector matches its own pod template labels', () => {
    for (const w of workloads()) expect(selects(w.spec.selector.matchLabels, w.spec.template.metadata.labels), `${w.kind} ${w.metadata.name}`).toBe(true);
  });

  it('every Service selects at least one workload, and each target port is a port of the selected containers', () => {
    const services = objects.filter((o) => o.kind === 'Service');
    expect(services.length).toBeGreaterThanOrEqual(3);
    for (const svc of services) {
      const spec = svc.spec as { selector: Record<string, string>; ports: Array<{ name: string; port: number; targetPort: number | string }> };
      const selected = workloads().filter((w) => selects(spec.selector, w.spec.template.metadata.labels));
      expect(selected.length, `Service ${svc.metadata.name} selects nothing`).toBeGreaterThan(0);
      for (const w of selected) {
        for (const p of spec.ports) {
          const resolved = w.spec.template.spec.containers.map((c) => resolvePort(c, p.targetPort)).filter((n) => n !== undefined);
          expect(resolved, `Service ${svc.metadata.name} port ${p.name} → ${w.metadata.name}`).toContain(p.port);
        }
      }
    }
  });

  it('every volume a container mounts is declared by its pod, and every claimed PVC exists', () => {
    const claims = new Set(objects.filter((o) => o.kind === 'PersistentVolumeClaim').map((o) => o.metadata.name));
    for (const w of workloads()) {
      const volumes = w.spec.template.spec.volumes ?? [];
      const names = new Set(volumes.map((v) => v.name));
      for (const c of allContainers(w)) for (const m of c.volumeMounts ?? []) expect(names.has(m.name), `${w.metadata.name}/${c.name} mounts ${m.name}`).toBe(true);
      for (const v of volumes) {
        const claim = (v as { persistentVolumeClaim?: { claimName: string } }).persistentVolumeClaim?.claimName;
        if (claim) expect(claims.has(claim), `${w.metadata.name} claims ${claim}`).toBe(true);
      }
    }
  });

  it('every Secret and ConfigMap a container reads is defined in deploy/k3s with the keys it reads', () => {
    const byName = (kind: string) => new Map(objects.filter((o) => o.kind === kind).map((o) => [o.metadata.name, o] as const));
    const secrets = byName('Secret');
    const configMaps = byName('ConfigMap');
    const keysOf = (o: K8sObject | undefined) => new Set(Object.keys({ ...o?.data, ...o?.stringData }));
    for (const w of workloads()) {
      for (const c of allContainers(w)) {
        for (const e of c.env ?? []) {
          const s = e.valueFrom?.secretKeyRef;
          if (s) expect(keysOf(secrets.get(s.name)).has(s.key), `${w.metadata.name} ${e.name} → secret ${s.name}/${s.key}`).toBe(true);
          const cm = e.valueFrom?.configMapKeyRef;
          if (cm) expect(keysOf(configMaps.get(cm.name)).has(cm.key), `${w.metadata.name} ${e.name} → configmap ${cm.name}/${cm.key}`).toBe(true);
        }
        for (const f of c.envFrom ?? []) if (f.configMapRef) expect(configMaps.has(f.configMapRef.name), f.configMapRef.name).toBe(true);
      }
    }
  });

  it('every pod runs as a non-root user, and every long-running container has liveness and readiness probes', () => {
    for (const w of workloads()) {
      expect(w.spec.template.spec.securityContext?.runAsNonRoot, w.metadata.name).toBe(true);
      for (const c of w.spec.template.spec.containers) {
        expect(c.livenessProbe?.httpGet?.path, `${w.metadata.name}/${c.name} liveness`).toMatch(/^\//);
        expect(c.readinessProbe?.httpGet?.path, `${w.metadata.name}/${c.name} readiness`).toMatch(/^\//);
      }
    }
  });
});
