import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'demo',
    include: ['test/**/*.test.ts'],
    // The end-to-end run starts a server, a pool worker and three agents: minutes on a busy machine.
    testTimeout: 240_000,
    hookTimeout: 30_000,
  },
});
