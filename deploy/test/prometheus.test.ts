import { describe, expect, it } from 'vitest';
import { agentLocalApiPort, serverPorts } from './support/components.ts';
import { k3sObjects, workloads } from './support/k8s.ts';
import { poolConfigFacts } from './support/pool.ts';
import { parseYamlFile } from './support/yaml-docs.ts';

interface ScrapeConfig {
  job_name: string;
  metrics_path?: string;
  kubernetes_sd_configs?: Array<{ role: string; namespaces?: { names: string[] } }>;
  file_sd_configs?: Array<{ files: string[] }>;
  relabel_configs?: Array<{ source_labels?: string[]; regex?: string; action?: string; replacement?: string; target_label?: string }>;
}

const config = parseYamlFile('deploy/prometheus/prometheus.yml')[0]!.value as { scrape_configs: ScrapeConfig[] };
const jobs = new Map(config.scrape_configs.map((j) => [j.job_name, j] as const));

function keepRule(job: ScrapeConfig): { label: string; value: string } {
  const rule = job.relabel_configs?.find((r) => r.action === 'keep');
  if (!rule) throw new Error(`${job.job_name} keeps no pods`);
  const label = rule.source_labels![0]!.replace('__meta_kubernetes_pod_label_', '');
  return { label, value: rule.regex! };
}

function scrapePort(job: ScrapeConfig): number {
  const rule = job.relabel_configs?.find((r) => r.target_label === '__address__');
  return Number(/:(\d+)$/.exec(rule!.replacement!)![1]);
}

/** Kubernetes label keys as Prometheus sanitizes them in __meta_kubernetes_pod_label_*. */
const sanitize = (key: string) => key.replace(/[^a-zA-Z0-9_]/g, '_');

describe('Prometheus scrape configuration', () => {
  it('has a job for the server, the agents (cluster and bare), the pool workers and Triton', () => {
    expect([...jobs.keys()].sort()).toEqual(['flotilla-agent', 'flotilla-agent-bare', 'flotilla-pool', 'flotilla-pool-triton', 'flotilla-server']);
  });

  it('each Kubernetes job keeps exactly the pods of a workload in the manifests, in their namespace', () => {
    const namespaces = new Set(k3sObjects().filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name));
    for (const job of jobs.values()) {
      if (!job.kubernetes_sd_configs) continue;
      for (const ns of job.kubernetes_sd_configs[0]!.namespaces!.names) expect(namespaces.has(ns), ns).toBe(true);
      const keep = keepRule(job);
      const matching = workloads().filter((w) => Object.entries(w.spec.template.metadata.labels).some(([k, v]) => sanitize(k) === keep.label && new RegExp(`^(?:${keep.value})$`).test(v)));
      expect(matching.length, `${job.job_name} keeps no workload`).toBeGreaterThan(0);
    }
  });

  it('each job scrapes the port and path its pods announce in their prometheus.io annotations', () => {
    for (const job of jobs.values()) {
      if (!job.kubernetes_sd_configs) continue;
      const keep = keepRule(job);
      for (const w of workloads().filter((x) => Object.entries(x.spec.template.metadata.labels).some(([k, v]) => sanitize(k) === keep.label && v === keep.value))) {
        const ann = w.spec.template.metadata.annotations ?? {};
        expect(String(scrapePort(job)), `${job.job_name} → ${w.metadata.name}`).toBe(ann['prometheus.io/port']);
        expect(job.metrics_path ?? '/metrics').toBe(ann['prometheus.io/path']);
      }
    }
  });

  it('scrape ports are the server HTTP port, the agent local API port and the pool port of the code', async () => {
    expect(scrapePort(jobs.get('flotilla-server')!)).toBe(serverPorts().http);
    expect(scrapePort(jobs.get('flotilla-agent')!)).toBe(agentLocalApiPort());
    const pool = await poolConfigFacts();
    if (pool) expect(scrapePort(jobs.get('flotilla-pool')!)).toBe(pool.port);
  });

  it('keeps the namespace and pod labels the Prometheus adapter needs for per-pod metrics', () => {
    for (const name of ['flotilla-pool', 'flotilla-pool-triton']) {
      const targets = new Set(jobs.get(name)!.relabel_configs!.map((r) => r.target_label));
      expect(targets.has('namespace') && targets.has('pod'), name).toBe(true);
    }
  });
});
