import type { TSchema } from 'typebox';
import { Value } from 'typebox/value';

/**
 * Fills a configuration's defaults from its schema and lists every problem as `path: message`,
 * with unknown keys named. Shared by the processes that load a strict JSON + env configuration.
 */
export function checkConfig(schema: TSchema, raw: unknown): { value: unknown; problems: string[] } {
  const value = Value.Default(schema, structuredClone(raw));
  if (Value.Check(schema, value)) return { value, problems: [] };
  const problems = [...Value.Errors(schema, value)]
    // Each unknown key yields two errors (the key and the object); keep the one naming the key.
    .filter((e) => e.keyword !== 'boolean')
    .map((e) => {
      const where = e.instancePath ? e.instancePath.slice(1).replaceAll('/', '.') : '(root)';
      const extra =
        e.keyword === 'additionalProperties' ? ` (${(e.params as { additionalProperties?: string[] }).additionalProperties?.join(', ')})` : '';
      return `${where}: ${e.message}${extra}`;
    });
  return { value, problems };
}

/** Freezes an object and everything under it: a validated configuration never changes afterwards. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
