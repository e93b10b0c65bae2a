// Mutation testing on the trust boundary (issue 16): every security check must be proven by a test
// that fails without it. `npm run test:mutation` runs it; docs/security.md explains the scope,
// the threshold and the survivors that are equivalent.

/** The files whose checks guard the trust boundary. Test helpers (`testing*`, `test-gateway.ts`) are not product code. */
const scope = [
  'gateway/auth/**/*.ts',
  'gateway/policy/**/*.ts',
  'gateway/device/**/*.ts',
  'gateway/chat/completions-route.ts',
  'gateway/access.ts',
  'main/entitlements/**/*.ts',
  'main/ipc/**/*.ts',
  'main/external/**/*.ts',
  'main/conversations/sealedFile.ts',
  'main/device/key.ts',
  'main/electron/rendererRequest.ts',
  'main/electron/secretBackend.ts',
  'main/electron/clientCertificate.ts',
  'main/config/**/*.ts',
];

const notProduct = ['!**/*.test.ts', '!**/testing/**', '!**/testing.ts', '!main/entitlements/test-gateway.ts'];

/**
 * The files whose results `stryker-incremental.json` holds: what CI reruns incrementally
 * (`STRYKER_SCOPE=baseline`). Since 2026-12-06 it holds every file of `scope`; a file added to the
 * scope joins it once a complete run of it is committed (see docs/security.md).
 */
const baseline = [
  'main/external/allowList.ts',
  'main/ipc/dispatch.ts',
  'main/ipc/register.ts',
  'main/conversations/sealedFile.ts',
  'main/electron/rendererRequest.ts',
  'main/electron/secretBackend.ts',
  'gateway/device/challenges.ts',
  'main/config/darwin.ts',
  'main/config/linux.ts',
  'main/config/managed.ts',
  'main/config/ownership.ts',
  'main/config/policy.ts',
  'main/config/schema.ts',
  'main/config/spellcheck.ts',
  'main/config/windows.ts',
  'main/electron/clientCertificate.ts',
  'main/entitlements/verify.ts',
  'main/entitlements/jwks.ts',
  'gateway/auth/session-token.ts',
  'gateway/device/posture.ts',
  'gateway/device/attestation/refusal.ts',
  'gateway/device/attestation/enrolment-policy.ts',
  'gateway/device/attestation/options.ts',
  'gateway/device/attestation/credential.ts',
  'gateway/device/attestation/certificate-chain.ts',
  'gateway/device/attestation/device-certificate.ts',
  'gateway/device/attestation/tpm-structures.ts',
  'gateway/policy/candidate.ts',
  'gateway/policy/check-worker.ts',
  'gateway/policy/check.ts',
  'gateway/policy/checker.ts',
  'gateway/policy/engine.ts',
  'gateway/policy/watch.ts',
  'main/entitlements/errors.ts',
  'main/entitlements/view.ts',
  'main/entitlements/cache.ts',
  'main/entitlements/stream.ts',
  'main/entitlements/service.ts',
  'main/device/key.ts',
  'gateway/policy/describe.ts',
  'gateway/policy/publish.ts',
  'gateway/policy/publish-cli.ts',
  'gateway/auth/dpop.ts',
  'gateway/auth/errors.ts',
  'gateway/auth/entitlement-signer.ts',
  'gateway/auth/keys.ts',
  'gateway/auth/request-auth.ts',
  'gateway/auth/identity-token.ts',
  'gateway/device/attestation/tpm-attestation.ts',
  'gateway/device/attestation/session-key.ts',
  'gateway/device/attestation/session-evidence.ts',
  'gateway/device/attestation/admission.ts',
  'gateway/device/attestation/enrolments.ts',
  'gateway/device/attestation/postgres-enrolments.ts',
  'gateway/device/attestation/pending-activations.ts',
  'gateway/device/attestation/admin-routes.ts',
  'gateway/access.ts',
  'gateway/chat/completions-route.ts',
];

/** `STRYKER_MUTATE=main/external,main/ipc` narrows a local run to some of the scope. */
const only =
  process.env.STRYKER_SCOPE === 'baseline' ? baseline : process.env.STRYKER_MUTATE?.split(',').filter(Boolean);
const mutate = only?.length
  ? [...only.map((p) => (p.endsWith('.ts') ? p : `${p.replace(/\/$/, '')}/**/*.ts`)), ...notProduct]
  : [...scope, ...notProduct];

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  mutate,
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.stryker.config.ts', related: true, pool: 'forks' },
  checkers: ['typescript'],
  // The node-side program without e2e, scripts and benchmarks: the checker only needs what tests and scope import.
  tsconfigFile: 'tsconfig.stryker.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  coverageAnalysis: 'perTest',
  // The machines have 2 cores shared with everything else: one test process, one checker.
  concurrency: Number(process.env.STRYKER_CONCURRENCY ?? 1),
  timeoutMS: 20_000,
  timeoutFactor: 2,
  // Only mutants in changed code, or covered by changed tests, are run again; the file is committed.
  incremental: true,
  incrementalFile: 'stryker-incremental.json',
  reporters: ['clear-text', 'html', 'json', 'progress'],
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true, reportMutants: true },
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  thresholds: { high: 95, low: 90, break: 95 },
  // Only what no test reads: tests spawn tools from scripts/, read templates from build/ and the
  // managed-settings table from docs/it-deployment.md (scripts/managed-policy/templates.test.ts).
  ignorePatterns: ['dist', 'out', 'test-results', 'playwright-report', '.state', 'reports', 'test-reports'],
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
