import { readRepoFile } from './paths.ts';

/**
 * Names the deploy files use before the code provides them, listed in docs/deploy.md under
 * "Pending" as table rows: | `kind` | `name` | … |. kind is `metric`, `route` or `env`.
 */
export interface PendingItem {
  kind: 'metric' | 'route' | 'env';
  name: string;
}

export function pendingItems(): PendingItem[] {
  const doc = readRepoFile('docs/deploy.md');
  const start = doc.indexOf('## Pending');
  if (start < 0) return [];
  const end = doc.indexOf('\n## ', start + 1);
  const section = doc.slice(start, end < 0 ? undefined : end);
  const items: PendingItem[] = [];
  for (const m of section.matchAll(/^\|\s*`(metric|route|env)`\s*\|\s*`([^`]+)`\s*\|/gm)) items.push({ kind: m[1] as PendingItem['kind'], name: m[2]! });
  return items;
}

export function isPending(kind: PendingItem['kind'], name: string): boolean {
  return pendingItems().some((p) => p.kind === kind && p.name === name);
}
