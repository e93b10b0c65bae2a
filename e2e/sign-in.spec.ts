import { expect, saveScreenshot, signIn, signOut, test } from './fixtures';

test('each demo persona signs in through the identity provider, sees their name, and signs out', async ({
  app,
  harness,
}) => {
  await saveScreenshot(app, 'sign-in');
  for (const persona of harness.stack.personas) {
    await signIn(app, harness, persona.name);
    await app.getByRole('button', { name: `Account: ${persona.name}` }).click();
    await expect(app.getByRole('banner').getByText(persona.username)).toBeVisible();
    if (persona.id === 'us-researcher') await saveScreenshot(app, 'account-menu');
    await app.keyboard.press('Escape');
    await signOut(app);
  }
});

test('a cancelled sign-in leaves the app usable', async ({ app, harness }) => {
  await app.getByRole('button', { name: /^sign in/i }).click();
  await harness.nextExternalUrl();
  await app.getByRole('button', { name: /cancel/i }).click();
  await expect(app.getByRole('button', { name: /^sign in/i })).toBeEnabled();
  // The app is still usable: a second attempt goes all the way through.
  await signIn(app, harness, 'Bao Nguyen');
  await expect(app.getByText('Bao Nguyen').first()).toBeVisible();
});
