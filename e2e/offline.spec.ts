import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack, type RunningStack } from '../gateway/stack';
import { blockRealNetwork, expect, saveScreenshot, signIn, test } from './fixtures';
import { startHarness, type Harness } from './harness/harness';

/** A clock the spec can move forward, as the hours pass for a laptop taken offline. */
class MovableClock {
  offsetMs = 0;
  now(): number {
    return Date.now() + this.offsetMs;
  }
}

test('gateway stopped: offline with the last document, fails closed after exp, reconnects when back', async ({
  page,
  context,
}) => {
  test.setTimeout(180_000);
  const stateDir = await mkdtemp(join(tmpdir(), 'clearance-e2e-offline-'));
  const clock = new MovableClock();
  let stack: RunningStack | undefined = await startStack({ stateDir, log: () => {} });
  const ports = { idpPort: Number(new URL(stack.idpUrl).port), gatewayPort: Number(new URL(stack.gatewayUrl).port) };
  let harness: Harness | undefined;
  try {
    harness = await startHarness({ stack, clock });
    await blockRealNetwork(context);
    await page.goto(harness.url);
    await signIn(page, harness, 'Avery Stone');
    await page.getByRole('button', { name: 'My access', exact: true }).click();
    const live = page.getByTestId('live-state');
    await expect(live).toHaveAttribute('data-live', 'connected');
    const mythos = page.locator('tr[data-model-id="mythos-5"]');
    await expect(mythos).toContainText(/allowed|available/i);
    const refreshedAt = await page
      .locator('.facts div', { hasText: 'Last refreshed' })
      .locator('time')
      .getAttribute('datetime');
    expect(refreshedAt).toBeTruthy();

    // The gateway goes away: the app says so and keeps showing the last document.
    await stack.close();
    stack = undefined;
    await page.getByRole('button', { name: 'Refresh' }).click();
    await expect(live).toHaveAttribute('data-live', 'offline', { timeout: 30_000 });
    const banner = page.getByTestId('access-banner');
    await expect(banner).toContainText('No model is available until it can reach the gateway again');
    // The banner, My access and the picker agree: nothing is shown as available while offline.
    await expect(page.locator('.access-table .status-allowed')).toHaveCount(0);
    await expect(mythos).toContainText('Access could not be confirmed');
    await expect(mythos).not.toContainText('Available');
    // "Last refreshed" is the last successful refresh, not the failed one just now.
    const lastRefreshed = page.locator('.facts div', { hasText: 'Last refreshed' }).locator('time');
    await expect(lastRefreshed).toHaveAttribute('datetime', refreshedAt ?? 'missing');
    await saveScreenshot(page, 'my-access-offline');
    await mythos.getByRole('button', { name: 'Why is Mythos 5 unavailable?' }).click();
    const why = page.getByRole('dialog');
    await expect(why).toContainText('could not reach the gateway since');
    await expect(why).not.toContainText(/https?:\/\/|127\.0\.0\.1|\bE[A-Z]{3,}\b/);
    await page.keyboard.press('Escape');
    await page.getByRole('button', { name: 'Chat', exact: true }).click();
    await page.getByRole('combobox', { name: 'Model' }).click();
    const options = page.getByRole('listbox').getByRole('option');
    await expect(options.first()).toBeVisible();
    for (const option of await options.all()) {
      await expect(option).toHaveAttribute('aria-disabled', 'true');
    }
    await saveScreenshot(page, 'picker-offline');
    await page.keyboard.press('Escape');
    await page.getByRole('button', { name: 'My access', exact: true }).click();

    // Past the document's exp (10 minutes) with no gateway: every restricted model fails closed.
    clock.offsetMs = 11 * 60 * 1000;
    await page.getByRole('button', { name: 'Refresh' }).click();
    await expect(mythos).toContainText(/could not be confirmed|unavailable|denied/i);
    await expect(page.locator('tr[data-model-id="haiku-4"]')).toContainText(
      /could not be confirmed|unavailable|denied/i,
    );
    const send = await page.evaluate(() => window.clearance.sendChat({ model: 'mythos-5', content: 'hello' }));
    expect(send).toMatchObject({ ok: false, error: { code: 'MODEL_DENIED', reason: 'ENTITLEMENTS_STALE' } });
    await saveScreenshot(page, 'my-access-stale');

    // The gateway comes back on the same address: the app reconnects by itself.
    clock.offsetMs = 0;
    stack = await startStack({ stateDir, ...ports, log: () => {} });
    await expect(live).toHaveAttribute('data-live', 'connected', { timeout: 60_000 });
    await expect(mythos).toContainText(/allowed|available/i);
  } finally {
    await harness?.close();
    await stack?.close();
  }
});
