import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, ERRORS, FlotillaError } from '../src/index.ts';

const doc = readFileSync(fileURLToPath(new URL('../../../docs/errors.md', import.meta.url)), 'utf8');

describe('error catalogue', () => {
  it('documents every code in docs/errors.md', () => {
    const missing = ERROR_CODES.filter((c) => !doc.includes(`\`${c}\``));
    expect(missing).toEqual([]);
  });

  it('documents no code that does not exist', () => {
    const documented = [...doc.matchAll(/`(FLT_[A-Z0-9_]+)`/g)].map((m) => m[1]!);
    expect(documented.filter((c) => !(c in ERRORS))).toEqual([]);
  });

  it('uses the FLT_ prefix and an HTTP status for every code', () => {
    for (const code of ERROR_CODES) {
      expect(code).toMatch(/^FLT_[A-Z0-9_]+$/);
      expect(ERRORS[code].status).toBeGreaterThanOrEqual(200);
      expect(ERRORS[code].status).toBeLessThan(600);
    }
  });

  it('carries code, status and safe details in FlotillaError', () => {
    const err = new FlotillaError('FLT_DEVICE_NOT_FOUND', 'no device x', { id: 'x' });
    expect(err.statusCode).toBe(404);
    expect(err.toJSON()).toEqual({ code: 'FLT_DEVICE_NOT_FOUND', message: 'no device x', details: { id: 'x' } });
  });
});
