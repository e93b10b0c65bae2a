import AxeBuilder from '@axe-core/playwright';
import { readFile } from 'node:fs/promises';
import { expect, signIn, test } from './fixtures';

test('below the version the gateway requires, the harness explains, never updates itself, and offers diagnostics', async ({
  app,
  harness,
}) => {
  await signIn(app, harness, 'Avery Stone');
  expect(await harness.services.handlers.getUpdateStatus({})).toMatchObject({
    state: 'disabled',
    message: 'The browser harness never updates itself.',
    canUpdate: false,
  });

  // What discovery's min_app_version does (main/update/minimumVersion.test.ts runs it from a real gateway).
  harness.services.update.requireVersion('99.0.0');
  const screen = app.getByTestId('update-required');
  await expect(screen.getByRole('heading', { name: 'Update Clearance to continue' })).toBeVisible();
  await expect(screen).toContainText('Your organisation requires Clearance 99.0.0 or later');
  await expect(screen).toContainText('The browser harness never updates itself. Ask IT to install the new version');
  await expect(screen.getByRole('button', { name: /Download|Restart|Check for updates/ })).toHaveCount(0);
  await expect(app.getByRole('textbox', { name: 'Message' })).toHaveCount(0);

  const results = await new AxeBuilder({ page: app }).analyze();
  expect(results.passes.length).toBeGreaterThan(10);
  expect(results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id)).toEqual(
    [],
  );

  const [download] = await Promise.all([
    app.waitForEvent('download'),
    screen.getByRole('button', { name: 'Export diagnostics' }).click(),
  ]);
  const bundle = JSON.parse(await readFile(await download.path(), 'utf8'));
  expect(bundle.update).toMatchObject({ policy: 'off', state: 'disabled', requiredVersion: '99.0.0' });

  // The gateway lowers its minimum again: the app comes back.
  harness.services.update.requireVersion('0.0.1');
  await expect(app.getByRole('textbox', { name: 'Message' })).toBeVisible();
});
