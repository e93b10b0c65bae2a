import { defineConfig } from 'vitest/config';

/**
 * The tests Stryker may run: those of the trust-boundary files themselves, not the whole suite.
 *
 * Stryker narrows further to the tests related to the mutated files, then to the tests that cover each
 * mutant (perTest coverage). Whole-stack suites (gateway/server, gateway/stack, main/session), browser
 * e2e specs and benchmarks never run under mutation, so a run stays bounded on two cores.
 */
export default defineConfig({
  test: {
    include: [
      'gateway/auth/**/*.test.ts',
      'gateway/policy/**/*.test.ts',
      'gateway/device/**/*.test.ts',
      'gateway/chat/completions-*.test.ts',
      'gateway/access.test.ts',
      'main/entitlements/**/*.test.ts',
      'main/ipc/**/*.test.ts',
      'main/external/**/*.test.ts',
      'main/electron/**/*.test.ts',
      'main/config/**/*.test.ts',
      'main/conversations/sealedFile.test.ts',
      'main/device/key.test.ts',
    ],
    environment: 'node',
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
