import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'modelkit',
    include: ['test/**/*.test.ts'],
    // Builds every model once (cached under the OS temp folder) before the test files run.
    globalSetup: ['./test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
