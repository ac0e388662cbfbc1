import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where the processes the demo starts have their entry points. Each package's `main.ts` sits next
 * to the `src/index.ts` its package exports, so resolving the package finds it wherever the
 * workspace is checked out.
 */
function mainNextTo(pkg: string): string {
  return join(dirname(fileURLToPath(import.meta.resolve(pkg))), 'main.ts');
}

export const entryPoints = {
  server: (): string => mainNextTo('@flotilla/server'),
  agent: (): string => mainNextTo('@flotilla/agent'),
  pool: (): string => mainNextTo('@flotilla/pool'),
};

/** tsx's ESM loader as a file URL, for `node --import`: children run TypeScript without a build. */
export function tsxLoader(): string {
  return import.meta.resolve('tsx');
}

/**
 * The environment a child starts with: ours without any FLOTILLA_* variable (a user's own
 * settings must not leak into the demo's processes), plus the given ones.
 */
export function childEnv(vars: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('FLOTILLA_')) env[k] = v;
  return { ...env, ...vars };
}
