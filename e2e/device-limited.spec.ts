import AxeBuilder from '@axe-core/playwright';
import type { Page } from '@playwright/test';
import {
  compliantLinuxDevice,
  createRecordedPostureService,
  noncompliantLinuxDevice,
} from '../main/device/fixtures/devices';
import { blockRealNetwork, expect, saveScreenshot, signIn, test } from './fixtures';
import { startHarness } from './harness/harness';

/** Fails on any serious or critical axe violation on the page as it is now. */
async function expectAccessible(page: Page, screen: string): Promise<void> {
  const results = await new AxeBuilder({ page }).analyze();
  expect(results.passes.length, `${screen}: axe checked nothing`).toBeGreaterThan(10);
  const blocking = results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.nodes.map((node) => node.target.join(' ')).join('; ')}`);
  expect(blocking, `${screen}: serious or critical accessibility violations`).toEqual([]);
}

// The worker's stack publishes device_policy.scope "models": the gateway's policy (device.cedar) keeps a
// non-compliant device from the models that require a compliant one, and the app opens for the rest.
test.use({ deviceGateScope: 'models', device: 'noncompliant' });

for (const scheme of ['light', 'dark'] as const) {
  test.describe(`${scheme} theme`, () => {
    test.use({ colorScheme: scheme });

    test('a non-compliant device opens the app, chats with an unrestricted model, and sees the restricted one explained', async ({
      app,
      harness,
    }) => {
      await signIn(app, harness, 'Avery Stone');
      // Not stopped by the gate: the main layout with the banner naming the failing checks.
      const banner = app.getByTestId('device-limited-banner');
      await expect(banner).toBeVisible();
      await expect(banner).toHaveAttribute('role', 'status');
      await expect(banner).toContainText('Disk encryption');
      await expect(banner).toContainText('Firewall');
      await expect(banner).toContainText('including your history');
      await expect(app.getByTestId('device-gate')).toHaveCount(0);

      // Mythos 5 requires a compliant device: greyed in the picker with the gateway's reason.
      const picker = app.getByRole('combobox', { name: 'Model' });
      await picker.click();
      const mythos = app.getByRole('listbox').getByRole('option', { name: /Mythos 5/ });
      await expect(mythos).toHaveAttribute('aria-disabled', 'true');
      await expect(mythos).toContainText('Device not compliant');
      await saveScreenshot(app, `device-limited-picker-${scheme}`);
      // Haiku 4 does not: the person can chat with it.
      await app
        .getByRole('listbox')
        .getByRole('option', { name: /^Haiku 4/ })
        .click();
      await expect(picker).toContainText('Haiku 4');
      await app.getByRole('textbox', { name: 'Message' }).fill('Is this device allowed to chat?');
      await app.getByRole('button', { name: 'Send message' }).click();
      const rows = app.getByTestId('message-list').getByTestId('message-row');
      await expect(rows).toHaveCount(2);
      await expect(rows.nth(1)).toContainText('Demo model');
      await expect(rows.nth(1)).not.toContainText(/not compliant|refused/i);
      await expectAccessible(app, `limited main layout (${scheme})`);
      await saveScreenshot(app, `device-limited-main-${scheme}`);

      // My access: Mythos 5 unavailable with the device reason; Why? explains it with its remediation.
      await app.getByRole('button', { name: 'My access', exact: true }).click();
      const table = app.getByRole('table');
      await expect(table.getByRole('row', { name: /Mythos 5/ })).toContainText('Device not compliant');
      await app.getByRole('button', { name: 'Why is Mythos 5 unavailable?' }).click();
      const panel = app.getByRole('dialog', { name: 'Why is Mythos 5 unavailable?' });
      await expect(panel).toContainText('Device not compliant');
      await expect(panel).toContainText('requires a compliant device');
      await expect(panel.getByRole('button', { name: 'Fix device compliance' })).toBeVisible();
      await saveScreenshot(app, `device-limited-why-${scheme}`);
      await app.keyboard.press('Escape');
      await expect(panel).toBeHidden();

      // The device checks open from the banner, with the fixes, and Esc comes back.
      await banner.getByRole('button', { name: 'Review device checks' }).click();
      const gate = app.getByTestId('device-gate');
      await expect(gate.getByRole('heading', { level: 1 })).toHaveText('Device checks');
      await expect(gate).toContainText('models that need a compliant device are unavailable');
      await expect(gate.getByRole('button', { name: 'Copy what to do for Firewall' })).toBeVisible();
      await expect(gate.getByRole('button', { name: 'Back to Clearance' })).toBeFocused();
      await expectAccessible(app, `limited device checks (${scheme})`);
      await saveScreenshot(app, `device-limited-checks-${scheme}`);
      await gate.getByRole('button', { name: 'Check again' }).click();
      await expect(gate.getByTestId('device-check-result')).toContainText('2 required checks are still not passing');
      await app.keyboard.press('Escape');
      await expect(gate).toHaveCount(0);
      await expect(banner.getByRole('button', { name: 'Review device checks' })).toBeFocused();
      // The conversation is still there after the round trip.
      await app.getByRole('button', { name: 'Chat', exact: true }).click();
      await expect(rows.first()).toContainText('Is this device allowed to chat?');
    });
  });
}

test('fixing the device and pressing Check again re-attests and lifts the limit on Mythos 5', async ({
  page,
  context,
  stack,
}) => {
  // The laptop is fixed while the app runs: the same profile's checks start failing, then pass.
  const failing = createRecordedPostureService(noncompliantLinuxDevice);
  const passing = createRecordedPostureService(compliantLinuxDevice);
  let fixed = false;
  const harness = await startHarness({ stack, posture: { check: () => (fixed ? passing : failing).check() } });
  try {
    await blockRealNetwork(context);
    await page.goto(harness.url);
    await signIn(page, harness, 'Avery Stone');
    const banner = page.getByTestId('device-limited-banner');
    await expect(banner).toBeVisible();
    const picker = page.getByRole('combobox', { name: 'Model' });
    await picker.click();
    await expect(page.getByRole('listbox').getByRole('option', { name: /Mythos 5/ })).toHaveAttribute(
      'aria-disabled',
      'true',
    );
    await page.keyboard.press('Escape');

    fixed = true;
    await banner.getByRole('button', { name: 'Review device checks' }).click();
    const gate = page.getByTestId('device-gate');
    await gate.getByRole('button', { name: 'Check again' }).click();
    // The device passes: the page leaves for the app, the banner is gone, and the session is compliant.
    await expect(gate).toHaveCount(0);
    await expect(banner).toHaveCount(0);
    await picker.click();
    const mythos = page.getByRole('listbox').getByRole('option', { name: /Mythos 5/ });
    await expect(mythos).not.toHaveAttribute('aria-disabled', 'true');
    await mythos.click();
    await expect(picker).toContainText('Mythos 5');
  } finally {
    await harness.close();
  }
});
