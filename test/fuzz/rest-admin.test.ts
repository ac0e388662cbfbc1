import { describe, expect, it } from 'vitest';
import { expectTargetClean } from './fuzz-ci.ts';
import { fuzzRestAdmin } from './targets/rest-admin.ts';

describe('fuzz: REST API', () => {
  it('answers fuzzed bodies, query strings and path parameters on every route below 500, with an FLT_ code on every 4xx', async () => {
    const report = await expectTargetClean(fuzzRestAdmin, 200);
    expect(report.outcomes.routes).toBeGreaterThanOrEqual(10);
    // Some requests get past validation, so the handlers themselves are exercised.
    expect(report.outcomes['200']).toBeGreaterThan(0);
  });
});
