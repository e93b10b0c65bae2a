import { _electron, test as base, expect, type BrowserContext, type Page } from '@playwright/test';
import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack, type RunningStack } from '../gateway/stack';
import type { DeviceGateScope } from '../shared/discovery';
import { startHarness, type Harness, type HarnessDevice } from './harness/harness';

/** Where specs save screenshots for people to look at. */
export const screenshotDir = join('e2e', 'output');

/**
 * Aborts every request that does not go to this machine (Element's e2e fixture does the same),
 * so a spec can never reach, or depend on, the real network.
 */
export async function blockRealNetwork(context: BrowserContext): Promise<void> {
  await context.route('**/*', (route) => {
    const { hostname } = new URL(route.request().url());
    if (hostname === '127.0.0.1' || hostname === 'localhost' || hostname === '[::1]') return route.continue();
    return route.abort('blockedbyclient');
  });
}

/** Saves a full-page screenshot under e2e/output/. */
export async function saveScreenshot(page: Page, name: string): Promise<string> {
  await mkdir(screenshotDir, { recursive: true });
  const path = join(screenshotDir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/**
 * Signs in through the real development identity provider: the app asks the "system browser" to open
 * the authorize URL, the test opens it in a second page, picks the persona, and returns to the app.
 */
export async function signIn(app: Page, harness: Harness, personaName: string): Promise<void> {
  await app.getByRole('button', { name: /^sign in/i }).click();
  const authorizeUrl = await harness.nextExternalUrl();
  const browser = await app.context().newPage();
  await browser.goto(authorizeUrl);
  await browser.getByRole('button', { name: new RegExp(`^${personaName}`) }).click();
  await expect(browser.getByRole('heading', { name: 'You are signed in to Clearance' })).toBeVisible();
  await browser.close();
}

/** Signs out through the account menu. */
export async function signOut(app: Page): Promise<void> {
  await app.getByRole('button', { name: /^Account:/ }).click();
  await app.getByRole('menuitem', { name: /sign out/i }).click();
  await expect(app.getByRole('button', { name: /^sign in/i })).toBeVisible();
}

interface WorkerFixtures {
  /** The worker's stack's device gate scope (discovery's `device_policy.scope`); the gateway's default (`app`) when unset. */
  readonly deviceGateScope: DeviceGateScope | undefined;
  readonly stack: RunningStack;
}

interface TestFixtures {
  readonly device: HarnessDevice;
  /**
   * Managed settings for this test, written to a folder laid out like `/etc/clearance/policy.json`
   * and read by the real Linux reader (an object as JSON, a string as is); `GATEWAY_URL` in it becomes
   * the worker's gateway. None by default.
   */
  readonly managedPolicy: Readonly<Record<string, unknown>> | string | undefined;
  readonly harness: Harness;
  readonly app: Page;
}

/**
 * Specs get a fresh profile and harness per test, over one demo stack per worker.
 */
export const test = base.extend<TestFixtures, WorkerFixtures>({
  deviceGateScope: [undefined, { option: true, scope: 'worker' }],
  stack: [
    async ({ deviceGateScope }, use) => {
      const stack = await startStack({
        ...(deviceGateScope ? { deviceGateScope } : {}),
        stateDir: await mkdtemp(join(tmpdir(), 'clearance-e2e-stack-')),
        // Replies take a few seconds, so a spec can act while one is still streaming.
        demoTokensPerSecond: 20,
        log: () => {},
      });
      await use(stack);
      await stack.close();
    },
    { scope: 'worker' },
  ],
  device: ['compliant', { option: true }],
  managedPolicy: [undefined, { option: true }],
  harness: async ({ stack, device, managedPolicy }, use) => {
    let managedPolicyDir: string | undefined;
    if (managedPolicy) {
      managedPolicyDir = await mkdtemp(join(tmpdir(), 'clearance-e2e-etc-'));
      await chmod(managedPolicyDir, 0o755);
      const text = typeof managedPolicy === 'string' ? managedPolicy : JSON.stringify(managedPolicy, null, 2);
      await writeFile(join(managedPolicyDir, 'policy.json'), text.replaceAll('GATEWAY_URL', stack.gatewayUrl), {
        mode: 0o644,
      });
    }
    const harness = await startHarness({ stack, device, managedPolicyDir });
    await use(harness);
    await harness.close();
  },
  app: async ({ page, context, harness, stack }, use) => {
    if (process.env.CLEARANCE_E2E_SHELL === 'electron') {
      await use(await launchElectron(stack, harness));
      return;
    }
    await blockRealNetwork(context);
    await page.goto(harness.url);
    await use(page);
  },
});

/**
 * The same specs against real Electron (CLEARANCE_E2E_SHELL=electron, where the binary exists): the app
 * is launched against the worker's stack, and its `shell.openExternal` is redirected so `signIn` can
 * drive the identity provider as it does in the harness. Specs that seed through `harness.services`
 * need the harness's in-process services.
 */
async function launchElectron(stack: RunningStack, harness: Harness): Promise<Page> {
  const electronApp = await _electron.launch({
    args: ['.', `--user-data-dir=${await mkdtemp(join(tmpdir(), 'clearance-electron-profile-'))}`],
    env: { ...process.env, CLEARANCE_GATEWAY_URL: stack.gatewayUrl, CLEARANCE_DEV_CA_FILE: stack.caCertPath },
  });
  await electronApp.evaluate(({ shell }) => {
    const opened: string[] = [];
    (globalThis as unknown as { clearanceOpened: string[] }).clearanceOpened = opened;
    shell.openExternal = async (url: string) => void opened.push(url);
  });
  Object.assign(harness, {
    nextExternalUrl: async () => {
      for (;;) {
        const url = await electronApp.evaluate(() =>
          (globalThis as unknown as { clearanceOpened: string[] }).clearanceOpened.shift(),
        );
        if (url) return url;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
  });
  const window = await electronApp.firstWindow();
  window.on('close', () => void electronApp.close());
  return window;
}

export { expect };
