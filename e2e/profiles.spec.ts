import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { DataKey } from '../main/conversations/sealedFile';
import { MemorySecretStore } from '../main/node/adapters';
import { profileFolderName } from '../main/profile/personId';
import type { IpcResult } from '../shared/ipc';
import { startHarness, type Harness } from './harness/harness';
import { blockRealNetwork, expect, saveScreenshot, signIn, signOut, test } from './fixtures';

/** A word only Avery's conversation contains, so any trace of it on Bao's screen is found. */
const SECRET_WORD = 'zebrafish';

async function chooseModel(app: Page, name: string): Promise<void> {
  const picker = app.getByRole('combobox', { name: 'Model' });
  await picker.click();
  await app
    .getByRole('listbox')
    .getByRole('option', { name: new RegExp(`^${name}`) })
    .click();
  await expect(picker).toContainText(name);
}

/** Calls the desktop API as the page would, through the same contract the preload exposes. */
function callAsPage(
  app: Page,
  channel: 'getConversation' | 'exportConversation',
  id: string,
): Promise<IpcResult<unknown>> {
  return app.evaluate(
    ([name, conversationId]) => {
      const api = (window as unknown as { clearance: Record<string, (request: unknown) => Promise<unknown>> })
        .clearance;
      const request = name === 'exportConversation' ? { id: conversationId, format: 'json' } : { id: conversationId };
      return api[name]?.(request) as Promise<IpcResult<unknown>>;
    },
    [channel, id] as const,
  );
}

/** Records, from now on, whether the page ever shows `word` (catches a flash of the previous person's sidebar). */
async function watchFor(app: Page, word: string): Promise<() => Promise<boolean>> {
  await app.evaluate((needle) => {
    const state = window as unknown as { __seen: boolean };
    state.__seen = document.body.innerText.includes(needle);
    new MutationObserver(() => {
      if (document.body.innerText.includes(needle)) state.__seen = true;
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  }, word);
  return () => app.evaluate(() => (window as unknown as { __seen: boolean }).__seen);
}

test('one person’s conversations are theirs alone on a shared profile', async ({ page: app, context, stack }) => {
  // Four sign-ins and a whole Mythos 5 reply at the demo model's pace.
  test.setTimeout(240_000);
  await blockRealNetwork(context);
  // One OS secret store for the device, as on a shared laptop: only the per-person keys keep people apart.
  const secrets = new MemorySecretStore();
  const harness: Harness = await startHarness({ stack, secrets });
  try {
    await app.goto(harness.url);

    // Avery (a verified US person) chats with Mythos 5.
    await signIn(app, harness, 'Avery Stone');
    await chooseModel(app, 'Mythos 5');
    await app.getByRole('textbox', { name: 'Message' }).fill(`Summarise the ${SECRET_WORD} assay results`);
    await app.getByRole('button', { name: 'Send message' }).click();
    const rows = app.getByTestId('message-list').getByTestId('message-row');
    await expect(rows).toHaveCount(2);
    await expect(rows.nth(1).getByRole('button', { name: 'Regenerate' })).toBeVisible({ timeout: 30_000 });
    const sidebar = app.getByRole('navigation', { name: 'Conversations' });
    await expect(sidebar.getByTestId('conversation-item')).toHaveCount(1);
    const averyStore = await harness.services.conversations();
    const [averys] = await averyStore.list();
    if (!averys) throw new Error('Avery’s conversation was not saved');
    expect((await averyStore.get(averys.id)).messages[1]?.model).toBe('mythos-5');
    const averyId = harness.services.access.personId ?? '';
    expect(averyId).not.toBe('');

    // She signs out: nothing of hers stays on screen.
    await signOut(app);
    await expect(app.getByText(SECRET_WORD, { exact: false })).toHaveCount(0);

    // Bao (a foreign national) signs in on the same profile, and never sees a trace of it.
    const sawSecret = await watchFor(app, SECRET_WORD);
    await signIn(app, harness, 'Bao Nguyen');
    await expect(app.getByRole('button', { name: 'Account: Bao Nguyen' })).toBeVisible();
    await expect(sidebar.getByText('No conversations yet.')).toBeVisible();
    await expect(sidebar.getByTestId('conversation-item')).toHaveCount(0);
    // Checked before searching: the search box's own "no match" line repeats the word.
    expect(await sawSecret()).toBe(false);
    await sidebar.getByRole('searchbox', { name: 'Search conversations' }).fill(SECRET_WORD);
    await expect(sidebar).toContainText(`No conversations match “${SECRET_WORD}”.`);
    await expect(sidebar.getByTestId('conversation-item')).toHaveCount(0);
    await saveScreenshot(app, 'profiles-bao-after-avery');

    for (const channel of ['getConversation', 'exportConversation'] as const) {
      const answer = await callAsPage(app, channel, averys.id);
      expect(answer, `${channel} with Avery’s id`).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
      expect(JSON.stringify(answer)).not.toContain(SECRET_WORD);
    }

    // On disk, Bao's key opens none of Avery's files, even copied across.
    const baoId = harness.services.access.personId ?? '';
    expect(baoId).not.toBe('');
    expect(baoId).not.toBe(averyId);
    const profilesDir = join(harness.profileDir, 'profiles');
    const averyDir = join(profilesDir, profileFolderName(averyId), 'conversations');
    const baoDir = join(profilesDir, profileFolderName(baoId), 'conversations');
    const baoKey = DataKey.unwrap(await readFile(join(baoDir, 'data-key.bin')), secrets, baoId);
    const averysKey = await readFile(join(averyDir, 'data-key.bin'));
    expect(() => DataKey.unwrap(averysKey, secrets, baoId)).toThrow(/belongs to another person/);
    const sealed = await readFile(join(averyDir, `${averys.id}.conv`));
    expect(() => baoKey.open(sealed, `clearance:conversation:v1:${averys.id}`)).toThrow(/integrity check/);
    expect((await readdir(baoDir)).filter((name) => name.endsWith('.conv'))).toEqual([]);

    // Switching back to Avery shows her history again.
    await sidebar.getByRole('searchbox', { name: 'Search conversations' }).fill('');
    await signOut(app);
    await signIn(app, harness, 'Avery Stone');
    await expect(sidebar.getByTestId('conversation-item')).toHaveCount(1);
    await sidebar
      .getByRole('button', { name: new RegExp(SECRET_WORD, 'i') })
      .first()
      .click();
    await expect(rows).toHaveCount(2);
    await expect(rows.first()).toContainText(SECRET_WORD);
  } finally {
    await harness.close();
  }
});
