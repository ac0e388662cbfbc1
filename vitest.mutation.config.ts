import { defineConfig } from 'vitest/config';

/**
 * The tests Stryker runs against each mutant of the security modules (stryker.config.mjs). Only
 * the suites that exercise those modules, so one mutant costs seconds, not the whole repo's run.
 */
export default defineConfig({
  test: {
    name: 'mutation',
    include: [
      'packages/release/test/{artifact-check,canonical-json,key-rotation,keys,verify-release,trusted-keys,signature-check,verify-file}.test.ts',
      'server/test/broker/*-policy.test.ts',
      'server/test/broker/{device-acl,hook-decisions,takeover,payload-limit}.test.ts',
      'server/test/auth/*.test.ts',
      'server/test/rest-auth.test.ts',
    ],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
