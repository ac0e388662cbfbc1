import type { FastifyInstance } from 'fastify';

/**
 * Every route fastify registered, as `METHOD /full/path` (HEAD left out), read from
 * `printRoutes()`: its tree prints each node relative to its parent, so the full path is rebuilt
 * from the indentation (each level is four columns of `│   ` or spaces before `├── ` / `└── `) by
 * appending each node to its parent.
 */
export function registeredRoutes(app: FastifyInstance): string[] {
  const out: string[] = [];
  const parents: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^([│ ]*)[├└]── (\S+) \(([A-Z, ]+)\)$/.exec(line.trimEnd());
    if (!m) continue;
    const depth = [...m[1]!].length / 4;
    // A child prints as the rest of its parent's path: `/:id` under `/v1/devices`, `ment-tokens` under `/v1/enroll`.
    const path = depth === 0 ? m[2]! : `${parents[depth - 1]!}${m[2]!}`;
    parents[depth] = path;
    parents.length = depth + 1;
    for (const method of m[3]!.split(', ')) if (method !== 'HEAD') out.push(`${method} ${path}`);
  }
  return out;
}
