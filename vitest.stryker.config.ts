import { defineConfig } from 'vitest/config';

/**
 * The tests Stryker may run: those of the trust-boundary files themselves, not the whole suite.
 *
 * Stryker narrows further to the tests related to the mutated files, then to the tests that cover each
 * mutant (perTest coverage). Whole-stack suites (gateway/server, gateway/stack, main/session), browser
 * e2e specs and benchmarks never run under mutation, so a run stays bounded on two cores.
 */
/**
 * The swtpm suites take 10–40 s per test (a software TPM makes keys and quotes). In the CI baseline
 * (`STRYKER_SCOPE=baseline`), whose files they only touch in passing (a device challenge is issued
 * before every attestation), they would turn each covered mutant into minutes; the baseline's own
 * unit tests prove those files. A full run keeps them.
 */
const slowSuites =
  process.env.STRYKER_SCOPE === 'baseline'
    ? [
        // The four suites that start swtpm (they import testing/swtpm); the fast attestation unit tests stay,
        // since they are what kills the attestation files' mutants in the baseline.
        'gateway/device/attestation/tpm-attestation.test.ts',
        'gateway/device/attestation/tpm-attestation.attack.test.ts',
        'gateway/device/attestation/tpm-cluster.test.ts',
        'gateway/device/attestation/session-key.test.ts',
      ]
    : [];

export default defineConfig({
  test: {
    exclude: ['**/node_modules/**', ...slowSuites],
    include: [
      'gateway/auth/**/*.test.ts',
      'gateway/policy/**/*.test.ts',
      'gateway/device/**/*.test.ts',
      'gateway/chat/completions-*.test.ts',
      'gateway/access.test.ts',
      'gateway/access.unit.test.ts',
      'main/entitlements/**/*.test.ts',
      'main/ipc/**/*.test.ts',
      'main/external/**/*.test.ts',
      'main/electron/**/*.test.ts',
      'main/config/**/*.test.ts',
      // The templates and docs IT deploys are generated from main/config/schema.ts: this proves its titles,
      // descriptions, categories and examples (the generated files must match what the schema produces).
      'scripts/managed-policy/templates.test.ts',
      'main/conversations/sealedFile.test.ts',
      'main/device/key.test.ts',
    ],
    environment: 'node',
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
