import { describe, expect, it } from 'vitest';
import { expectTargetClean } from './fuzz-ci.ts';
import { fuzzReleaseManifest } from './targets/release-manifest.ts';

describe('fuzz: signed release manifests', () => {
  it('refuses every tampered, re-signed, damaged or random manifest with a typed FLT_RELEASE_ code and accepts only what the trusted key signed', async () => {
    const report = await expectTargetClean(fuzzReleaseManifest, 1000);
    const codes = Object.keys(report.outcomes).map((k) => k.split(':')[1]);
    for (const code of ['FLT_RELEASE_MANIFEST_INVALID', 'FLT_RELEASE_BAD_SIGNATURE', 'FLT_RELEASE_UNKNOWN_KEY']) expect(codes, code).toContain(code);
  });
});
