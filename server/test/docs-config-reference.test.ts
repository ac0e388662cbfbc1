import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { OPERATIONS_DOC, renderConfigReference } from '../../scripts/gen-config-reference.ts';
import { ServerConfigSchema } from '../src/config/schema.ts';

const doc = readFileSync(OPERATIONS_DOC, 'utf8');

describe('configuration reference in docs/operations.md', () => {
  it('is what scripts/gen-config-reference.ts generates from the config schemas today', () => {
    const fresh = renderConfigReference(doc);
    expect(fresh === doc, 'docs/operations.md is stale: run `pnpm exec tsx scripts/gen-config-reference.ts`').toBe(true);
  });

  it('has a row for every top-level server key or for the keys of its section', () => {
    const missing = Object.keys(ServerConfigSchema.properties).filter((key) => !doc.includes(`| \`${key}\` |`) && !doc.includes(`| \`${key}.`));
    expect(missing).toEqual([]);
  });
});
