import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { startStack, type RunningStack } from '../gateway/stack';
import { startSoftwareTpm, type SoftwareTpm } from '../gateway/testing/swtpm';
import { startHarness, type Harness } from './harness/harness';
import { test as base, expect, saveScreenshot, signIn } from './fixtures';

/**
 * One software TPM per worker, and a demo stack whose gateway trusts its manufacturer: the
 * harness's `--device tpm`, over a stack shared by the specs below.
 */
const test = base.extend<object, { readonly softwareTpm: SoftwareTpm; readonly stack: RunningStack }>({
  softwareTpm: [
    // Playwright requires an object pattern for a fixture's first argument, even with no dependencies.
    // eslint-disable-next-line no-empty-pattern
    async ({}, use) => {
      const tpm = await startSoftwareTpm();
      await use(tpm);
      await tpm.close();
    },
    { scope: 'worker' },
  ],
  stack: [
    async ({ softwareTpm }, use) => {
      const stack = await startStack({
        stateDir: await mkdtemp(join(tmpdir(), 'clearance-e2e-tpm-stack-')),
        demoTokensPerSecond: 200,
        deviceTrust: { tpmManufacturerRoots: [softwareTpm.rootCaPem, softwareTpm.issuerCaPem] },
        log: () => {},
      });
      await use(stack);
      await stack.close();
    },
    { scope: 'worker' },
  ],
  harness: async ({ stack, softwareTpm, device }, use) => {
    const harness: Harness = await startHarness({ stack, device, ...(device === 'tpm' ? { tpm: softwareTpm } : {}) });
    await use(harness);
    await harness.close();
  },
});

async function orionOption(app: Page) {
  await app.getByRole('combobox', { name: 'Model' }).click();
  return app.getByRole('listbox').getByRole('option', { name: /^Orion 2 Secure/ });
}

test.describe('on the device whose key a TPM attests (--device tpm)', () => {
  test.use({ device: 'tpm' });
  // Every gateway call is signed by the software TPM through tpm2-tools (most of a second on a
  // loaded machine, docs/performance.md), and attestation runs about 20 tpm2-tools processes.
  test.describe.configure({ timeout: 240_000 });

  test('Orion 2 Secure is available in the picker and answers', async ({ app, harness, stack }) => {
    await signIn(app, harness, 'Avery Stone');
    const orion = await orionOption(app);
    await expect(orion).toBeVisible();
    await expect(orion).not.toHaveAttribute('aria-disabled', 'true');
    await saveScreenshot(app, 'picker-tpm-device');
    await orion.click();
    await expect(app.getByRole('combobox', { name: 'Model' })).toContainText('Orion 2 Secure');

    // The gateway recorded what it verified: a hardware key, identified by its EK certificate.
    const key = await harness.services.access.keys.load();
    expect(key.assurance).toBe('hardware');
    const enrolled = await stack.gateway.devices.find(
      stack.personas.find((p) => p.name === 'Avery Stone')!.id,
      key.thumbprint,
    );
    expect(enrolled).toMatchObject({ assurance: 'hardware' });
    expect(enrolled?.deviceId).toMatch(/^tpm-ek:[0-9a-f]{64}$/);

    await app.getByRole('textbox', { name: 'Message' }).fill('Hello from a TPM-backed device');
    await app.keyboard.press('Enter');
    const reply = app.getByTestId('message-list').getByTestId('message-row').last();
    await expect(reply).toContainText('Demo model', { timeout: 30_000 });
  });
});

test.describe('on the same gateway, a device with a software key', () => {
  test.use({ device: 'compliant' });

  test('sees Orion 2 Secure greyed with the hardware-key reason', async ({ app, harness }) => {
    await signIn(app, harness, 'Avery Stone');
    const orion = await orionOption(app);
    await expect(orion).toHaveAttribute('aria-disabled', 'true');
    await expect(orion).toContainText('Hardware-backed device key required');
    expect((await harness.services.access.keys.load()).assurance).toBe('software');
  });
});
