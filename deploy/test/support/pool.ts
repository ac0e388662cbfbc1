import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, listFiles, readRepoFile } from './paths.ts';

/**
 * The pool worker's config loader, read from its source when it is in the tree (packages/pool is
 * written alongside these files). Absent: the pool's names must be listed as pending in docs/deploy.md.
 */
const LOADER = 'packages/pool/src/config/load.ts';

interface PoolLoader {
  loadPoolConfig(opts: { env: NodeJS.ProcessEnv; argv: readonly string[] }): { port: number; host: string };
}

export async function poolLoader(): Promise<PoolLoader | undefined> {
  if (!existsSync(join(REPO_ROOT, LOADER))) return undefined;
  return (await import(/* @vite-ignore */ join(REPO_ROOT, LOADER))) as PoolLoader;
}

/** Names the pool's loader reads and its default port, asked of the real loader. */
export async function poolConfigFacts(): Promise<{ envNames: Set<string>; port: number } | undefined> {
  const loader = await poolLoader();
  if (!loader) return undefined;
  const read = new Set<string>();
  const values: Record<string, string> = { FLOTILLA_POOL_MODEL_REPOSITORY: '/models' };
  const env = new Proxy({} as NodeJS.ProcessEnv, {
    get(_t, key) {
      if (typeof key === 'string') read.add(key);
      return typeof key === 'string' ? values[key] : undefined;
    },
  });
  const config = loader.loadPoolConfig({ env, argv: [] });
  return { envNames: read, port: config.port };
}

/** GET route paths registered in the pool worker's source (`app.get('/path'…`). */
export function poolGetRoutes(): Set<string> {
  const routes = new Set<string>();
  const dir = 'packages/pool/src';
  if (!existsSync(join(REPO_ROOT, dir))) return routes;
  for (const file of listFiles(dir, (p) => p.endsWith('.ts'))) {
    for (const m of readRepoFile(file).matchAll(/\.get(?:<[^>]*>)?\(\s*'([^']+)'/g)) routes.add(m[1]!);
  }
  return routes;
}
