import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer, type FlotillaServer } from '@flotilla/server';
import { buildLocalApi } from '../../agent/src/local-api/build-local-api.ts';
import type { LocalInference } from '../../agent/src/local-api/local-inference.ts';
import { agentEnvNames, agentLocalApiPort, serverEnvNames, serverPorts } from './support/components.ts';
import { componentOf, parseFlotillaImage } from './support/images.ts';
import { allContainers, k3sObjects, resolvePort, workloads, type Container } from './support/k8s.ts';
import { isPending, pendingItems } from './support/pending.ts';
import { poolConfigFacts, poolGetRoutes } from './support/pool.ts';

type Component = 'server' | 'agent' | 'pool';

interface Facts {
  envNames: Set<string> | undefined;
  /** Container port name → the port the component listens on by default. */
  ports: Record<string, number> | undefined;
  /** Env var that moves each named port, where one exists. */
  portEnv: Record<string, string>;
}

async function facts(): Promise<Record<Component, Facts>> {
  const s = serverPorts();
  const pool = await poolConfigFacts();
  return {
    server: {
      envNames: serverEnvNames(),
      ports: { http: s.http, mqtt: s.mqtt, 'mqtt-ws': s.mqttWs ?? -1 },
      portEnv: { http: 'FLOTILLA_HTTP_PORT', mqtt: 'FLOTILLA_MQTT_PORT', 'mqtt-ws': 'FLOTILLA_MQTT_WS_PORT' },
    },
    agent: { envNames: agentEnvNames(), ports: { http: agentLocalApiPort() }, portEnv: { http: 'FLOTILLA_LOCAL_API_PORT' } },
    pool: { envNames: pool?.envNames, ports: pool ? { http: pool.port } : undefined, portEnv: { http: 'FLOTILLA_POOL_PORT' } },
  };
}

/** Every Flotilla container of the K3s manifests with the component it runs. */
function flotillaContainers(): Array<{ where: string; component: Component; container: Container; configMapEnv: string[] }> {
  const configMaps = new Map(k3sObjects().filter((o) => o.kind === 'ConfigMap').map((o) => [o.metadata.name, Object.keys(o.data ?? {})] as const));
  return workloads().flatMap((w) =>
    allContainers(w).flatMap((c) => {
      const img = parseFlotillaImage(c.image);
      if (!img) return [];
      const configMapEnv = (c.envFrom ?? []).flatMap((f) => (f.configMapRef ? (configMaps.get(f.configMapRef.name) ?? []) : []));
      return [{ where: `${w.file} ${w.metadata.name}/${c.name}`, component: componentOf(img.name), container: c, configMapEnv }];
    }),
  );
}

describe('manifests agree with the code', () => {
  let f: Record<Component, Facts>;
  beforeAll(async () => {
    f = await facts();
  });

  it('every FLOTILLA_* variable a container is given is one its component reads (or is listed as pending)', () => {
    const list = flotillaContainers();
    expect(list.map((c) => c.component)).toEqual(expect.arrayContaining(['server', 'agent', 'pool']));
    for (const { where, component, container, configMapEnv } of list) {
      const names = [...(container.env ?? []).map((e) => e.name), ...configMapEnv].filter((n) => n.startsWith('FLOTILLA_'));
      const known = f[component].envNames;
      for (const name of names) {
        const ok = known ? known.has(name) : isPending('env', name);
        expect(ok, `${where}: ${name} is not read by the ${component}`).toBe(true);
      }
    }
  });

  it('container ports are the ports each component listens on by default, and no env var moves them elsewhere', () => {
    for (const { where, component, container } of flotillaContainers()) {
      if (!container.ports) continue;
      const expected = f[component].ports;
      expect(expected, `${component} default ports unknown`).toBeDefined();
      for (const p of container.ports) {
        expect(p.name, `${where}: unnamed port`).toBeDefined();
        expect(p.containerPort, `${where}: port ${p.name}`).toBe(expected![p.name!]);
        const env = container.env?.find((e) => e.name === f[component].portEnv[p.name!]);
        if (env) expect(Number(env.value), `${where}: ${env.name}`).toBe(p.containerPort);
      }
    }
  });

  it('every named Service port forwards to the container port of the same name', () => {
    const services = k3sObjects().filter((o) => o.kind === 'Service');
    for (const svc of services) {
      const spec = svc.spec as { ports: Array<{ name: string; port: number; targetPort: number | string }> };
      for (const p of spec.ports) expect(typeof p.targetPort === 'string' ? p.name : String(p.targetPort), `${svc.metadata.name}:${p.name}`).toBe(typeof p.targetPort === 'string' ? p.targetPort : String(p.port));
    }
  });

  it('the server Service exposes HTTP, MQTT and MQTT over WebSocket on the server default ports', () => {
    const svc = k3sObjects().find((o) => o.kind === 'Service' && o.metadata.name === 'flotilla-server')!;
    const ports = Object.fromEntries((svc.spec as { ports: Array<{ name: string; port: number }> }).ports.map((p) => [p.name, p.port]));
    const s = serverPorts();
    expect(ports).toEqual({ http: s.http, mqtt: s.mqtt, 'mqtt-ws': s.mqttWs });
  });

  it('the agent and pool Services use the agent local API and pool default ports', () => {
    const byName = (n: string) => (k3sObjects().find((o) => o.kind === 'Service' && o.metadata.name === n)!.spec as { ports: Array<{ name: string; port: number }> }).ports;
    expect(byName('flotilla-agent').find((p) => p.name === 'http')?.port).toBe(agentLocalApiPort());
    const pool = f.pool.ports;
    if (pool) expect(byName('flotilla-pool').find((p) => p.name === 'http')?.port).toBe(pool.http);
  });

  it('every ghcr.io/flotilla image in the manifests carries one version, and init containers use their pod image', () => {
    const tags = new Set<string>();
    for (const w of workloads()) {
      const images = allContainers(w).map((c) => c.image);
      for (const image of images) {
        const img = parseFlotillaImage(image);
        if (img) tags.add(img.tag.split('-')[0]!);
      }
      const main = w.spec.template.spec.containers[0]!.image;
      for (const init of w.spec.template.spec.initContainers ?? []) expect(init.image, `${w.metadata.name}/${init.name}`).toBe(main);
    }
    expect([...tags]).toHaveLength(1);
  });

  it('the pool HorizontalPodAutoscalers target Deployments that exist in the manifests', () => {
    const deployments = new Set(k3sObjects().filter((o) => o.kind === 'Deployment').map((o) => o.metadata.name));
    const hpas = k3sObjects().filter((o) => o.kind === 'HorizontalPodAutoscaler');
    expect(hpas.map((h) => h.metadata.name).sort()).toEqual(['flotilla-pool', 'flotilla-pool-triton']);
    for (const h of hpas) {
      const ref = (h.spec as { scaleTargetRef: { kind: string; name: string } }).scaleTargetRef;
      expect(ref.kind).toBe('Deployment');
      expect(deployments.has(ref.name), ref.name).toBe(true);
    }
  });

  it('GPU pools ask for one nvidia.com/gpu and tolerate the GPU taint; agents run with the nvidia runtime class', () => {
    const runtimeClasses = new Set(k3sObjects().filter((o) => o.kind === 'RuntimeClass').map((o) => o.metadata.name));
    for (const w of workloads()) {
      const spec = w.spec.template.spec;
      if (w.metadata.name.startsWith('flotilla-pool')) {
        expect(spec.containers[0]!.resources?.limits?.['nvidia.com/gpu'], w.metadata.name).toBe(1);
        expect(spec.tolerations?.some((t) => t.key === 'nvidia.com/gpu'), w.metadata.name).toBe(true);
        expect(spec.nodeSelector?.['nvidia.com/gpu.present'], w.metadata.name).toBe('true');
      }
      if (w.kind === 'DaemonSet') {
        expect(spec.runtimeClassName, w.metadata.name).toBe('nvidia');
        expect(runtimeClasses.has('nvidia')).toBe(true);
      }
    }
  });
});

describe('probe paths are routes the components serve', () => {
  let dir: string;
  let server: FlotillaServer;
  let agentApi: ReturnType<typeof buildLocalApi>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-deploy-'));
    server = await buildServer({ dataDir: dir, logLevel: 'silent', http: { port: 0 }, mqtt: { tcpPort: 0, wsPort: null } });
    // Route registration never calls the inference service; a bare object stands in for it. The
    // daemon always gives the local API its metrics registry (agent/src/main.ts), so this does too.
    agentApi = buildLocalApi({ inference: {} as LocalInference, metrics: new Registry() });
    await agentApi.ready();
  });

  afterAll(async () => {
    await Promise.allSettled([server?.close(), agentApi?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  function routesOf(component: Component): ((path: string) => boolean) | undefined {
    if (component === 'server') return (path) => server.http.hasRoute({ method: 'GET', url: path });
    if (component === 'agent') return (path) => agentApi.hasRoute({ method: 'GET', url: path });
    // The pool worker has no app factory to build here yet: its GET routes as written in its source.
    const pool = poolGetRoutes();
    return pool.size > 0 ? (path) => pool.has(path) : undefined;
  }

  it('nothing listed as a pending route in docs/deploy.md is served yet (update the list when it lands)', () => {
    for (const item of pendingItems().filter((p) => p.kind === 'route')) {
      const [component, , path] = item.name.split(' ') as [Component, string, string];
      expect(routesOf(component)?.(path) ?? false, `${item.name} exists now: remove it from "Pending" in docs/deploy.md`).toBe(false);
    }
  });

  it('every liveness, readiness and startup probe path is a GET route of the component in the container', () => {
    let checked = 0;
    for (const { where, component, container } of flotillaContainers()) {
      const has = routesOf(component);
      for (const probe of [container.livenessProbe, container.readinessProbe, container.startupProbe]) {
        const path = probe?.httpGet?.path;
        if (!path) continue;
        expect(resolvePort(container, probe.httpGet!.port), `${where}: probe port`).toBeDefined();
        const ok = (has ? has(path) : false) || isPending('route', `${component} GET ${path}`);
        expect(ok, `${where}: ${component} has no GET ${path}`).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(6);
  });

  it('the server probes are /healthz for liveness and /readyz for readiness', () => {
    const c = flotillaContainers().find((x) => x.component === 'server')!.container;
    expect(c.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect(c.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(server.http.hasRoute({ method: 'GET', url: '/healthz' })).toBe(true);
    expect(server.http.hasRoute({ method: 'GET', url: '/readyz' })).toBe(true);
  });

  it('the metrics path of every scraped Flotilla pod is a route of its component (or listed as pending)', () => {
    for (const w of workloads()) {
      const ann = w.spec.template.metadata.annotations ?? {};
      if (ann['prometheus.io/scrape'] !== 'true') continue;
      const img = parseFlotillaImage(w.spec.template.spec.containers[0]!.image);
      if (!img) continue;
      const component = componentOf(img.name);
      const path = ann['prometheus.io/path']!;
      const has = routesOf(component);
      const ok = (has ? has(path) : false) || isPending('route', `${component} GET ${path}`);
      expect(ok, `${w.metadata.name}: ${component} has no GET ${path}`).toBe(true);
      const port = Number(ann['prometheus.io/port']);
      expect(w.spec.template.spec.containers[0]!.ports?.map((p) => p.containerPort)).toContain(port);
    }
  });
});
