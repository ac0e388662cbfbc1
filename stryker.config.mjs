// Mutation testing of Flotilla's security modules: release verification, the MQTT device policy
// and REST authorization. docs/mutation-testing.md explains the scope, the last score and every
// surviving mutant. Run with `pnpm exec stryker run`; reports land in reports/mutation/.
import { fileURLToPath } from 'node:url';

/** The modules under test, by the question each answers; the summary reporter scores each group. */
export const MODULES = {
  // Release verification, in four parts so each fits one run on a busy machine.
  'release verification: signed bytes and signatures': [
    'packages/release/src/canonical-json.ts',
    'packages/release/src/signing-payload.ts',
    'packages/release/src/signature-check.ts',
  ],
  'release verification: manifests and trusted keys': ['packages/release/src/verify-release.ts', 'packages/release/src/trusted-keys.ts'],
  'release verification: artifacts': ['packages/release/src/artifact-check.ts', 'packages/release/src/verify-file.ts'],
  'release verification: key rotation': ['packages/release/src/key-rotation.ts'],
  // The embedded broker's policy, and the external broker's ACLs and hook answers made from it.
  'MQTT ACL': ['server/src/broker/device-policy.ts', 'server/src/broker/external/device-acl.ts', 'server/src/broker/external/hook-decisions.ts'],
  // Roles, bearer-token admission and the token lookups behind it.
  'REST authorization': [
    'server/src/auth/roles.ts',
    'server/src/auth/secrets.ts',
    'server/src/auth/api-tokens.ts',
    'server/src/auth/enrollment-tokens.ts',
    'server/src/http/auth.ts',
  ],
};

/**
 * FLT_MUTATE_MODULE=<start of a module name> mutates only the modules it names (`release`, `mqtt`,
 * `rest`, `release verification: art`), for a busy machine; each module keeps its own incremental file and the summary merges the modules' results.
 */
const only = process.env.FLT_MUTATE_MODULE?.toLowerCase();
const selected = only ? Object.keys(MODULES).filter((name) => name.toLowerCase().startsWith(only)) : Object.keys(MODULES);
if (selected.length === 0) throw new Error(`FLT_MUTATE_MODULE=${only} names none of: ${Object.keys(MODULES).join(', ')}`);
const runName = only ? only.replace(/[^a-z]+/g, '-') : 'all';

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  // pnpm keeps the runner out of core's own node_modules, so core cannot find it by name.
  plugins: [fileURLToPath(import.meta.resolve('@stryker-mutator/vitest-runner')), fileURLToPath(new URL('./stryker-module-summary.mjs', import.meta.url))],
  vitest: { configFile: 'vitest.mutation.config.ts', related: false },
  coverageAnalysis: 'perTest',
  mutate: selected.flatMap((name) => MODULES[name]),
  // A static mutant (a module-level constant such as a schema or the role ranks) needs a fresh
  // module graph and every test for each run: minutes each on a shared machine. They are listed
  // as ignored; docs/mutation-testing.md says which ones and how they are covered instead.
  ignoreStatic: true,
  // Reruns only mutants whose code or covering tests changed since reports/stryker-incremental.json.
  incremental: true,
  incrementalFile: `reports/stryker-incremental-${runName}.json`,
  // The machine is shared: one test runner at a time.
  concurrency: 1,
  timeoutMS: 20_000,
  reporters: ['clear-text', 'progress', 'html', 'json', 'module-summary'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
  thresholds: { high: 90, low: 80, break: null },
};
