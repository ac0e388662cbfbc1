import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'e2e',
    include: ['e2e/**/*.test.ts', 'browser/**/*.test.ts', 'fuzz/**/*.test.ts', 'chaos/**/*.test.ts', 'soak/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
  },
});
