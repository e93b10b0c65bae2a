import { readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { expect, saveScreenshot, signIn, test } from './fixtures';

/** The signed-in person's conversations folder inside the harness profile. */
async function conversationsDir(profileDir: string): Promise<string> {
  const profiles = join(profileDir, 'profiles');
  const people = await readdir(profiles);
  expect(people).toHaveLength(1);
  return join(profiles, people[0] ?? '', 'conversations');
}

async function send(app: Page, text: string): Promise<void> {
  await app.getByRole('textbox', { name: 'Message' }).fill(text);
  await app.keyboard.press('Enter');
}

test('a failing disk shows the read-only banner, keeps what was saved, never shows an unsaved message, and saving resumes', async ({
  app,
  harness,
}) => {
  await signIn(app, harness, 'Avery Stone');
  await send(app, 'First question about tokenizers');
  const rows = app.getByTestId('message-row');
  await expect(rows).toHaveCount(2);
  await expect(app.getByRole('button', { name: 'Regenerate' })).toBeVisible({ timeout: 60_000 });
  await expect(app.getByTestId('save-banner')).toHaveCount(0);

  // The folder Clearance saves to stops being writable: a file now stands where the folder was (a real
  // write failure from the file system, not a stand-in for the store).
  const dir = await conversationsDir(harness.profileDir);
  await rename(dir, `${dir}.aside`);
  await writeFile(dir, 'not a folder');
  try {
    await send(app, 'Second question, which cannot be saved');
    const banner = app.getByTestId('save-banner');
    await expect(banner).toContainText('Read-only');
    await expect(banner).toContainText('Clearance cannot save your conversations');
    await expect(app.getByRole('alert')).toContainText('Your message was not sent');
    // What was saved stays readable; the unsaved message is not kept as a ghost.
    await expect(rows).toHaveCount(2);
    await expect(rows.filter({ hasText: 'Second question' })).toHaveCount(0);
    await expect(app.getByRole('textbox', { name: 'Message' })).toHaveValue('Second question, which cannot be saved');
    await saveScreenshot(app, 'save-failed-banner');
  } finally {
    await rm(dir, { force: true });
    await rename(`${dir}.aside`, dir);
  }

  // Room again: the next change saves, and the banner goes.
  await send(app, 'Second question, now that saving works');
  await expect(app.getByTestId('save-banner')).toHaveCount(0, { timeout: 30_000 });
  await expect(rows).toHaveCount(4);
});
