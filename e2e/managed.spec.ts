import AxeBuilder from '@axe-core/playwright';
import type { Page } from '@playwright/test';
import { expect, saveScreenshot, signIn, test } from './fixtures';

/** Fails on any serious or critical axe violation on the page as it is now. */
async function expectAccessible(page: Page, screen: string): Promise<void> {
  const results = await new AxeBuilder({ page }).analyze();
  expect(results.passes.length, `${screen}: axe checked nothing`).toBeGreaterThan(10);
  const blocking = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(
    blocking.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join('; ')}`),
    screen,
  ).toEqual([]);
}

test.describe('managed configuration from a policy file', () => {
  test.use({
    managedPolicy: {
      gatewayUrl: 'GATEWAY_URL',
      theme: 'dark',
      spellCheck: false,
      locks: ['theme', 'spellCheck', 'telemetry'],
      externalHosts: ['help.lab.example'],
      updatePolicy: 'notify',
      supportContact: 'IT Service Desk, ext. 4242',
      futureSetting: true,
    },
  });

  test('locked settings are read-only with the notice, and the Policies page lists each key with its source', async ({
    app,
    harness,
  }) => {
    await signIn(app, harness, 'Avery Stone');
    await expect(app.getByRole('textbox', { name: 'Message' })).toHaveAttribute('spellcheck', 'false');
    // The locked theme is in force, whatever the person had chosen.
    await expect(app.locator('html')).toHaveAttribute('data-theme', 'dark');

    await app.getByRole('button', { name: 'Settings' }).click();
    const theme = app.getByRole('group', { name: 'Colour theme' });
    await expect(theme.getByRole('radio', { name: 'Dark' })).toBeChecked();
    for (const name of ['System', 'Light', 'Dark']) await expect(theme.getByRole('radio', { name })).toBeDisabled();
    await expect(theme).toHaveAccessibleDescription('Managed by your organisation');
    const spelling = app.getByRole('checkbox', { name: /Check spelling/ });
    await expect(spelling).not.toBeChecked();
    await expect(spelling).toBeDisabled();
    await expect(app.getByRole('group', { name: 'Spell check' })).toHaveAccessibleDescription(
      'Managed by your organisation',
    );
    // The header's theme button cannot change it either.
    const themeButton = app.getByRole('button', { name: /^Theme: Dark\. Managed by your organisation/ });
    await expect(themeButton).toHaveAttribute('aria-disabled', 'true');
    await themeButton.dispatchEvent('click');
    await expect(app.locator('html')).toHaveAttribute('data-theme', 'dark');
    await expectAccessible(app, 'settings with locks');
    await saveScreenshot(app, 'managed-settings-locked');

    await app.getByRole('button', { name: 'View policies' }).click();
    await expect(app.getByRole('heading', { name: 'Policies' })).toBeVisible();
    const file = /clearance-e2e-etc-[^/]+\/policy\.json/;
    for (const key of [
      'gatewayUrl',
      'theme',
      'spellCheck',
      'locks',
      'externalHosts',
      'updatePolicy',
      'supportContact',
    ]) {
      const row = app.getByTestId(`policy-${key}`);
      await expect(row).toContainText('Policy file (machine)');
      await expect(row).toContainText(file);
      await expect(row).toContainText('Applied');
    }
    await expect(app.getByTestId('policy-theme')).toContainText('dark');
    await expect(app.getByTestId('policy-locks')).toContainText('Ignored "telemetry"');
    await expect(app.getByTestId('policy-futureSetting')).toContainText('Unknown key');
    await expectAccessible(app, 'policies page');
    await saveScreenshot(app, 'managed-policies');
  });
});

test.describe('invalid managed configuration', () => {
  test.use({
    managedPolicy: {
      gatewayUrl: 'GATEWAY_URL',
      updatePolicy: 'always',
      supportContact: 'IT Service Desk, ext. 4242',
    },
  });

  test('stops the app at a screen naming the key, the problem and the contact', async ({ app }) => {
    const alert = app.getByRole('alert');
    await expect(alert).toContainText('Your organisation’s settings for Clearance have a problem');
    await expect(alert).toContainText('updatePolicy');
    await expect(alert).toContainText('"off"|"notify"|"auto"');
    await expect(alert).toContainText(/clearance-e2e-etc-[^/]+\/policy\.json/);
    await expect(alert).toContainText('IT Service Desk, ext. 4242');
    await expect(app.getByRole('button', { name: /^sign in/i })).toHaveCount(0);
    await expectAccessible(app, 'invalid managed configuration');
    await saveScreenshot(app, 'managed-policy-invalid');
  });
});
