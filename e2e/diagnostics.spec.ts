import { readFile } from 'node:fs/promises';
import { expect, signIn, test } from './fixtures';

test('Help › Export diagnostics downloads one redacted file with what IT needs, including a page error', async ({
  app,
  harness,
}) => {
  await signIn(app, harness, 'Avery Stone');
  await expect(app.getByRole('button', { name: 'Help and keyboard shortcuts' })).toBeVisible();

  // A message whose text must never reach the bundle.
  const secretPrompt = 'Planted prompt text 7f3a: export-controlled question';
  const picker = app.getByRole('combobox', { name: 'Model' });
  await picker.click();
  await app
    .getByRole('listbox')
    .getByRole('option', { name: /^Haiku 4/ })
    .click();
  await app.getByRole('textbox', { name: 'Message' }).fill(secretPrompt);
  await app.getByRole('button', { name: 'Send message' }).click();
  await expect(app.getByTestId('message-list').getByTestId('message-row').first()).toContainText(secretPrompt);

  // The page's own error reaches main's log through the contract's call.
  await app.evaluate(() => {
    setTimeout(() => {
      throw new Error('Planted page error for diagnostics');
    });
  });
  await expect
    .poll(async () => (await harness.services.handlers.exportDiagnostics({})).content)
    .toContain('Planted page error for diagnostics');

  await app.getByRole('button', { name: 'Help and keyboard shortcuts' }).click();
  const [download] = await Promise.all([
    app.waitForEvent('download'),
    app.getByRole('menuitem', { name: 'Export diagnostics' }).click(),
  ]);
  expect(download.suggestedFilename()).toMatch(/^clearance-diagnostics-.*\.json$/);
  const text = await readFile(await download.path(), 'utf8');
  const bundle = JSON.parse(text);
  expect(bundle).toMatchObject({
    kind: 'clearance-diagnostics',
    app: { shell: 'harness' },
    session: { status: 'signed-in' },
    configuration: { gatewayUrl: { source: 'the browser harness' } },
    discovery: { identity_provider: { protocol: 'OIDC' } },
  });
  expect(bundle.entitlements.models.length).toBeGreaterThan(0);
  expect(bundle.deviceChecks.checks.length).toBeGreaterThan(0);
  expect(bundle.recentLog.join('\n')).toContain('Planted page error for diagnostics');
  expect(text).not.toContain(secretPrompt);
  expect(text).not.toMatch(/eyJ[\w-]{5,}\.[\w-]{5,}/);
  await expect(app.getByText(/Downloaded clearance-diagnostics-/)).toBeAttached();
});
