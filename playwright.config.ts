import { defineConfig } from '@playwright/test';

/**
 * End-to-end specs. By default they drive the browser harness in Debian's Chromium; with
 * CLEARANCE_E2E_SHELL=electron the same specs launch the real Electron app (where the binary exists).
 */
export default defineConfig({
  testDir: 'e2e',
  testMatch: '**/*.spec.ts',
  outputDir: 'test-results',
  // Two cores: one worker keeps the identity provider, gateway and Chromium from starving each other.
  workers: 1,
  timeout: 90_000,
  expect: { timeout: 10_000 },
  reporter: process.env.CI ? [['list'], ['json', { outputFile: 'test-reports/e2e.json' }]] : [['list']],
  use: {
    browserName: 'chromium',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    },
    // The development identity provider's self-signed certificate is shown in the test's stand-in for
    // the user's system browser; the app itself trusts only that CA, through its own agent.
    ignoreHTTPSErrors: true,
    viewport: { width: 1280, height: 820 },
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
  },
});
