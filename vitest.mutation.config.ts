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
      // The broker policy as pure decisions. The socket tests of the same rules
      // (connect-, publish-, subscribe-policy, takeover) run a real broker per test: a surviving
      // mutant would rerun all of them, over a minute each on a shared machine.
      'server/test/broker/{device-policy,forward-policy,device-acl,hook-decisions}.test.ts',
      // rest-auth.test.ts drives the same gate through every route table of a full server; the
      // route tables are not mutated here, and server/test/auth covers the gate itself in
      // milliseconds instead of seconds per mutant.
      'server/test/auth/*.test.ts',
    ],
    // Stryker switches mutants at run time, so modules need not be reloaded between test files:
    // sharing them halves each mutant's run. Every test file here builds its own fixtures.
    isolate: false,
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
