import { defineConfig } from 'vitest/config';

/**
 * The unit tests Stryker may run: the trust boundary's own tests and the gateway tests that drive it.
 *
 * Stryker narrows further to the tests related to the mutated files, then to the tests that cover each
 * mutant (perTest coverage). Browser e2e specs and benchmarks never run under mutation.
 */
export default defineConfig({
  test: {
    include: ['{shared,main,gateway}/**/*.test.ts'],
    environment: 'node',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
