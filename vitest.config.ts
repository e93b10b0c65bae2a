import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{shared,main,gateway,renderer,scripts,e2e/harness}/**/*.test.{ts,tsx}'],
    environment: 'node',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    benchmark: { include: ['bench/**/*.bench.ts'] },
  },
});
