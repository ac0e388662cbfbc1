import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, listFiles, readRepoFile } from './paths.ts';

/** prom-client suffixes a histogram's (and summary's) series with these. */
const SERIES_SUFFIXES = ['_bucket', '_sum', '_count'];

/** Folders whose TypeScript defines Flotilla's metrics. */
function sourceFiles(): string[] {
  const roots = ['server/src', 'agent/src', ...listFiles('packages', (p) => /^packages\/[^/]+\/src\//.test(p)).map((p) => p.split('/').slice(0, 3).join('/'))];
  const unique = [...new Set(roots)].filter((r) => existsSync(join(REPO_ROOT, r)));
  return unique.flatMap((r) => listFiles(r, (p) => /\.(ts|mts|mjs)$/.test(p)));
}

export interface SourceMetrics {
  /** Metric names declared with `name: 'flotilla_…'` (prom-client constructors), by file. */
  names: Map<string, string>;
  /** `prefix: '…'` of collectDefaultMetrics calls: process metrics under that prefix. */
  defaultPrefixes: string[];
}

export function sourceMetrics(): SourceMetrics {
  const names = new Map<string, string>();
  const defaultPrefixes: string[] = [];
  for (const file of sourceFiles()) {
    const text = readRepoFile(file);
    for (const m of text.matchAll(/\bname:\s*['"`](flotilla_[a-z0-9_]+)['"`]/g)) names.set(m[1]!, file);
    for (const m of text.matchAll(/collectDefaultMetrics\(\{[^}]*prefix:\s*['"`]([a-z0-9_]+)['"`]/g)) defaultPrefixes.push(m[1]!);
  }
  return { names, defaultPrefixes };
}

/** Whether a series name used in a query is produced by Flotilla's code. */
export function isDefined(series: string, src: SourceMetrics): boolean {
  if (src.names.has(series)) return true;
  for (const suffix of SERIES_SUFFIXES) if (series.endsWith(suffix) && src.names.has(series.slice(0, -suffix.length))) return true;
  // prom-client's default process metrics (process_*, nodejs_*) under a declared prefix.
  return src.defaultPrefixes.some((p) => series.startsWith(p) && /^(process|nodejs)_/.test(series.slice(p.length)));
}

/** Flotilla metric names (flotilla_…) referenced in a PromQL expression or any text. */
export function flotillaMetricRefs(text: string): string[] {
  return [...new Set([...text.matchAll(/\b(flotilla_[a-z0-9_]+)\b/g)].map((m) => m[1]!))];
}
