import { describe, expect, it } from 'vitest';
import { ROLLOUT_DEVICE_STATES } from '@flotilla/protocol';
import { readRepoFile } from './support/paths.ts';
import { parseYamlFile } from './support/yaml-docs.ts';
import { k3sObjects } from './support/k8s.ts';
import { flotillaMetricRefs, isDefined, sourceMetrics } from './support/source-metrics.ts';
import { isPending, pendingItems } from './support/pending.ts';

interface Panel {
  title: string;
  type: string;
  targets?: Array<{ expr: string }>;
  panels?: Panel[];
}

interface Dashboard {
  panels: Panel[];
  templating: { list: Array<{ name: string; definition?: string; query?: unknown }> };
}

const dashboard = JSON.parse(readRepoFile('deploy/grafana/flotilla-dashboard.json')) as Dashboard;
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const exprs = [
  ...panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
  ...dashboard.templating.list.map((v) => v.definition ?? ''),
];

/** Triton's own series (not Flotilla's code): the names its metrics endpoint documents. */
const TRITON_SERIES = new Set(['nv_inference_pending_request_count']);

function hpaMetricNames(): string[] {
  return k3sObjects()
    .filter((o) => o.kind === 'HorizontalPodAutoscaler')
    .flatMap((h) => (h.spec as { metrics: Array<{ type: string; pods?: { metric: { name: string } } }> }).metrics)
    .map((m) => {
      expect(m.type).toBe('Pods');
      return m.pods!.metric.name;
    });
}

describe('metric names agree with the code', () => {
  const src = sourceMetrics();

  it('finds the metric definitions in the source (server, broker, rollouts, agent, inference)', () => {
    for (const name of ['flotilla_devices', 'flotilla_broker_connected_clients', 'flotilla_rollout_devices', 'flotilla_agent_mqtt_connected', 'flotilla_agent_inference_duration_seconds']) {
      expect(src.names.has(name), name).toBe(true);
    }
    expect(isDefined('flotilla_agent_inference_duration_seconds_bucket', src)).toBe(true);
    expect(isDefined('flotilla_agent_inference_duration_seconds_total', src)).toBe(false);
  });

  it('every Flotilla metric in the Grafana dashboard is defined in the code or listed as pending', () => {
    const refs = [...new Set(exprs.flatMap(flotillaMetricRefs))];
    expect(refs.length).toBeGreaterThan(15);
    for (const name of refs) expect(isDefined(name, src) || isPending('metric', name), `dashboard uses ${name}`).toBe(true);
  });

  it('the dashboard has the fleet online, rollout funnel, latency and escalation panels', () => {
    const byTitle = (t: string) => panels.find((p) => p.title === t)?.targets?.map((x) => x.expr).join(' ') ?? '';
    expect(byTitle('Devices online')).toContain('flotilla_devices');
    expect(byTitle('Rollout funnel')).toContain('flotilla_rollout_devices');
    expect(byTitle('Inference latency p50 / p99 by model version')).toMatch(/flotilla_agent_inference_duration_seconds_bucket.*by \(le, model, version\)|by \(le, model, version\).*flotilla_agent_inference_duration_seconds_bucket/);
    expect(byTitle('Escalation rate by model version')).toMatch(/by \(model, version\)/);
  });

  it('label values the dashboard filters on are values the code sets', () => {
    const states = new Set<string>(ROLLOUT_DEVICE_STATES);
    const all = exprs.join('\n');
    for (const m of all.matchAll(/flotilla_rollout_devices\{[^}]*\bstate="([^"]+)"/g)) expect(states.has(m[1]!), m[1]).toBe(true);
    // Device status and presence labels: the gauge is set from the device store with online "true"/"false".
    const gauge = readRepoFile('server/src/metrics/server-metrics.ts');
    expect(gauge).toContain("online: row.online ? 'true' : 'false'");
    for (const m of all.matchAll(/flotilla_devices\{[^}]*\bonline="([^"]+)"/g)) expect(['true', 'false']).toContain(m[1]);
  });

  it('every HorizontalPodAutoscaler metric is served by an adapter rule, and is a pool metric of the code or Triton', () => {
    const adapter = parseYamlFile('deploy/prometheus/adapter-rules.yaml')[0]!.value as { rules: { custom: Array<{ seriesQuery: string; name: { as: string } }> } };
    const served = new Map(adapter.rules.custom.map((r) => [r.name.as, r.seriesQuery] as const));
    const names = hpaMetricNames();
    expect(names).toContain('flotilla_pool_queue_depth');
    for (const name of names) {
      expect(served.has(name), `adapter serves ${name}`).toBe(true);
      // The adapter needs the namespace and pod labels the scrape config keeps.
      expect(served.get(name)).toMatch(/namespace!="",pod!=""/);
      const ours = name.startsWith('flotilla_');
      expect(ours ? isDefined(name, src) || isPending('metric', name) : TRITON_SERIES.has(name), name).toBe(true);
    }
    for (const [name, query] of served) expect(query.startsWith(`${name}{`), `rule ${name} reads ${query}`).toBe(true);
  });

  it('every Flotilla metric named in the Prometheus files is defined in the code or listed as pending', () => {
    const text = readRepoFile('deploy/prometheus/prometheus.yml') + readRepoFile('deploy/prometheus/adapter-rules.yaml');
    for (const name of flotillaMetricRefs(text)) expect(isDefined(name, src) || isPending('metric', name), name).toBe(true);
  });

  it('nothing listed as pending in docs/deploy.md exists in the code yet (update the list when it lands)', () => {
    for (const item of pendingItems().filter((p) => p.kind === 'metric')) {
      expect(isDefined(item.name, src), `${item.name} is defined now: remove it from "Pending" in docs/deploy.md`).toBe(false);
    }
  });
});
