import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Download, Locator, Page } from '@playwright/test';
import { startStack } from '../gateway/stack';
import { MemorySecretStore } from '../main/node/adapters';
import type { ChatMessage } from '../shared/ipc';
import { startHarness, type Harness } from './harness/harness';
import { blockRealNetwork, expect, saveScreenshot, signIn, test } from './fixtures';

const STOPPED_NOTE = 'Stopped before the end.';
/** Every demo reply opens with this notice and ends with a fenced Python block, a table and a closing line. */
const DEMO_NOTICE = 'Demo model';

async function chooseModel(app: Page, name: string): Promise<void> {
  const picker = app.getByRole('combobox', { name: 'Model' });
  await picker.click();
  await app
    .getByRole('listbox')
    .getByRole('option', { name: new RegExp(`^${name}`) })
    .click();
  await expect(picker).toContainText(name);
}

function rows(app: Page): Locator {
  return app.getByTestId('message-list').getByTestId('message-row');
}

async function textLength(row: Locator): Promise<number> {
  return ((await row.textContent()) ?? '').length;
}

async function contentOf(download: Download): Promise<string> {
  return readFile(await download.path(), 'utf8');
}

/** The stored messages of the only conversation in a harness's profile. */
async function storedMessages(harness: Harness): Promise<readonly ChatMessage[]> {
  const store = await harness.services.conversations();
  const [summary] = await store.list();
  if (!summary) throw new Error('no conversation was saved');
  return (await store.get(summary.id)).messages;
}

test('a researcher streams, stops, regenerates, edits, searches, renames, deletes, exports, and finds the chat after a restart', async ({
  page: app,
  context,
}) => {
  await blockRealNetwork(context);
  // Its own, slower demo model, so Stop lands mid-reply even on a busy machine.
  const stack = await startStack({
    stateDir: await mkdtemp(join(tmpdir(), 'clearance-e2e-chat-')),
    demoTokensPerSecond: 15,
    log: () => {},
  });
  // The harness gets an explicit secret store so the restarted one can read the same encrypted profile,
  // as safeStorage would find the same key in the OS keychain.
  const secrets = new MemorySecretStore();
  let harness = await startHarness({ stack, secrets });
  try {
    await app.goto(harness.url);
    await signIn(app, harness, 'Avery Stone');
    await chooseModel(app, 'Haiku 4');

    // Send, and watch the reply stream in.
    const prompt = 'How should we track experiment provenance?';
    await app.getByRole('textbox', { name: 'Message' }).fill(prompt);
    await app.getByRole('button', { name: 'Send message' }).click();
    await expect(rows(app)).toHaveCount(2);
    await expect(rows(app).first()).toContainText(prompt);
    const reply = rows(app).nth(1);
    const stop = app.getByRole('button', { name: 'Stop generating' });
    await expect(reply).toContainText(DEMO_NOTICE);
    await expect(stop).toBeVisible();
    const early = await textLength(reply);
    await expect.poll(() => textLength(reply)).toBeGreaterThan(early + 20);

    // Stop it mid-way: the partial text stays, marked as stopped.
    await stop.click();
    await expect(reply).toContainText(STOPPED_NOTE);
    await expect(stop).toBeHidden();
    await expect(app.getByTestId('announcer')).toHaveText('Response stopped.');
    await expect(reply).toContainText(DEMO_NOTICE);
    const [, stopped] = await storedMessages(harness);
    expect(stopped?.status).toBe('stopped');
    expect(stopped?.content.length).toBeGreaterThan(DEMO_NOTICE.length);

    // Regenerate: a new reply replaces the stopped one and runs to the end.
    await reply.getByRole('button', { name: 'Regenerate' }).click();
    await expect(reply.getByRole('button', { name: 'Regenerate' })).toBeVisible({ timeout: 20_000 });
    await expect(rows(app)).toHaveCount(2);
    await expect(reply).not.toContainText(STOPPED_NOTE);
    await expect(reply.getByRole('table')).toBeVisible();
    const [, regenerated] = await storedMessages(harness);
    expect(regenerated?.id).not.toBe(stopped?.id);
    expect(regenerated?.status).toBe('complete');
    // The demo model answers a prompt deterministically, so the stopped reply was the start of this one.
    expect(regenerated?.content.startsWith(stopped?.content ?? '-')).toBe(true);
    expect(regenerated?.content.length).toBeGreaterThan(stopped?.content.length ?? 0);

    // Edit the question and send it again: the exchange is replaced.
    const edited = 'How should we track quokka experiment provenance across seeds?';
    await rows(app).first().getByRole('button', { name: 'Edit and resend' }).click();
    await app.getByRole('textbox', { name: 'Edit message' }).fill(edited);
    await app.getByRole('button', { name: 'Save and send' }).click();
    await expect(rows(app).first()).toContainText(edited);
    await expect(reply.getByRole('heading', { name: /quokka experiment provenance/ })).toBeVisible();
    await expect(reply.getByRole('button', { name: 'Regenerate' })).toBeVisible({ timeout: 20_000 });
    await expect(rows(app)).toHaveCount(2);
    await expect(reply.locator('pre code')).toContainText('def run(experiment');
    // Sending again brought the list back to the bottom, though the edited message was scrolled up to.
    await expect(reply.getByRole('button', { name: 'Regenerate' })).toBeInViewport();
    const afterEdit = await storedMessages(harness);
    expect(afterEdit.map((message) => [message.role, message.status])).toEqual([
      ['user', 'complete'],
      ['assistant', 'complete'],
    ]);
    expect(afterEdit[0]?.content).toBe(edited);
    await saveScreenshot(app, 'chat-streamed-markdown');

    // Search finds it by a word only its text contains, with a snippet around the hit.
    const sidebar = app.getByRole('navigation', { name: 'Conversations' });
    const search = sidebar.getByRole('searchbox', { name: 'Search conversations' });
    await search.fill('quokka');
    const hit = sidebar.getByTestId('conversation-item');
    await expect(sidebar.getByRole('list', { name: 'Search results' })).toBeVisible();
    await expect(hit).toHaveCount(1);
    await expect(hit).toContainText('quokka experiment provenance');
    await search.fill('platypus');
    await expect(sidebar).toContainText('No conversations match “platypus”.');
    await expect(hit).toHaveCount(0);
    await search.fill('');
    await expect(hit).toHaveCount(1);

    // Rename.
    const [summary] = await (await harness.services.conversations()).list();
    const title = summary?.title ?? '';
    expect(title).not.toBe('');
    await sidebar.getByRole('button', { name: `Rename “${title}”` }).click();
    const titleField = sidebar.getByRole('textbox', { name: 'Conversation title' });
    await titleField.fill('Quokka provenance notes');
    await titleField.press('Enter');
    await expect(sidebar.getByRole('button', { name: 'Rename “Quokka provenance notes”' })).toBeVisible();
    await expect(app.getByRole('heading', { level: 1 })).toHaveText('Quokka provenance notes');

    // Delete, then Undo brings it back.
    await sidebar.getByRole('button', { name: 'Delete “Quokka provenance notes”' }).click();
    await expect(hit).toHaveCount(0);
    await expect(app.getByRole('heading', { level: 1 })).toHaveText('New chat');
    const notifications = app.getByRole('region', { name: 'Notifications' });
    await expect(notifications).toContainText('Deleted “Quokka provenance notes”.');
    await notifications.getByRole('button', { name: 'Undo' }).click();
    await expect(hit).toHaveCount(1);
    await expect(hit).toContainText('Quokka provenance notes');
    await hit.getByRole('button', { name: /^Quokka provenance notes/ }).click();
    await expect(rows(app)).toHaveCount(2);
    await expect(rows(app).first()).toContainText(edited);

    // Export as Markdown and JSON: a download holding the messages.
    const exportAs = async (item: string): Promise<Download> => {
      await app.getByRole('button', { name: 'Export' }).click();
      const [download] = await Promise.all([
        app.waitForEvent('download'),
        app.getByRole('menuitem', { name: item }).click(),
      ]);
      return download;
    };
    const replyText = afterEdit[1]?.content ?? '';
    const markdown = await exportAs('Export as Markdown');
    expect(markdown.suggestedFilename()).toMatch(/^quokka-provenance-notes-\d{4}-\d{2}-\d{2}\.md$/);
    const markdownText = await contentOf(markdown);
    expect(markdownText).toContain('# Quokka provenance notes');
    expect(markdownText).toContain(edited);
    expect(markdownText).toContain(replyText);
    const json = await exportAs('Export as JSON');
    expect(json.suggestedFilename()).toMatch(/\.json$/);
    const exported = JSON.parse(await contentOf(json)) as {
      format: string;
      conversation: { title: string; messages: { role: string; content: string; model?: string }[] };
    };
    expect(exported.format).toBe('clearance.conversation');
    expect(exported.conversation.title).toBe('Quokka provenance notes');
    expect(exported.conversation.messages.map((message) => [message.role, message.content, message.model])).toEqual([
      ['user', edited, 'haiku-4'],
      ['assistant', replyText, 'haiku-4'],
    ]);

    // Restart: a new app over the same profile and keychain finds the conversation again.
    const profileDir = harness.profileDir;
    await harness.close();
    harness = await startHarness({ stack, profileDir, secrets });
    await app.goto(harness.url);
    // The sign-in comes back from the encrypted token cache in the profile, without the identity provider's pages.
    await expect(app.getByRole('button', { name: 'Account: Avery Stone' })).toBeVisible();
    const restored = app.getByRole('navigation', { name: 'Conversations' }).getByTestId('conversation-item');
    await expect(restored).toHaveCount(1);
    await restored.getByRole('button', { name: /^Quokka provenance notes/ }).click();
    await expect(rows(app)).toHaveCount(2);
    await expect(rows(app).first()).toContainText(edited);
    await expect(rows(app).nth(1).locator('pre code')).toContainText('def run(experiment');
    await expect(rows(app).nth(1)).not.toContainText(STOPPED_NOTE);
  } finally {
    await harness.close();
    await stack.close();
  }
});

test('the keyboard drives the chat: Enter, Shift+Enter, Esc, Ctrl+K, Ctrl+N and the shortcuts overlay', async ({
  app,
  harness,
}) => {
  await signIn(app, harness, 'Avery Stone');
  await chooseModel(app, 'Haiku 4');
  const composer = app.getByRole('textbox', { name: 'Message' });

  // Shift+Enter adds a line and sends nothing.
  await composer.click();
  await composer.pressSequentially('first line');
  await composer.press('Shift+Enter');
  await composer.pressSequentially('second line');
  await expect(composer).toHaveValue('first line\nsecond line');
  await expect(app.getByTestId('message-list')).toBeHidden();

  // Enter sends; Esc stops the reply while it streams.
  await composer.press('Enter');
  await expect(composer).toHaveValue('');
  await expect(rows(app).first()).toContainText('first line');
  await expect(rows(app).first()).toContainText('second line');
  const reply = rows(app).nth(1);
  await expect(reply).toContainText(DEMO_NOTICE);
  await expect(app.getByRole('button', { name: 'Stop generating' })).toBeVisible();
  await composer.press('Escape');
  await expect(reply).toContainText(STOPPED_NOTE);
  await expect(app.getByRole('button', { name: 'Stop generating' })).toBeHidden();
  await expect(app.getByTestId('announcer')).toHaveText('Response stopped.');

  // Ctrl+K focuses the search box.
  await composer.focus();
  await app.keyboard.press('Control+K');
  await expect(app.getByRole('searchbox', { name: 'Search conversations' })).toBeFocused();

  // Ctrl+N starts a new chat with the composer focused.
  await app.keyboard.press('Control+N');
  await expect(app.getByRole('heading', { level: 1 })).toHaveText('New chat');
  await expect(app.getByTestId('message-list')).toBeHidden();
  await expect(composer).toBeFocused();

  // "?" outside a text field opens the shortcuts overlay; Esc closes it.
  await app.getByRole('heading', { level: 1 }).click();
  await app.keyboard.press('?');
  const help = app.getByRole('dialog', { name: 'Keyboard shortcuts' });
  await expect(help).toBeVisible();
  for (const [keys, action] of [
    ['Enter', 'Send the message'],
    ['Shift+Enter', 'New line in the message'],
    ['Ctrl+K', 'Search conversations'],
    ['Ctrl+N', 'New chat'],
  ]) {
    await expect(help.getByRole('row', { name: `${keys} ${action}` })).toBeVisible();
  }
  await saveScreenshot(app, 'shortcuts-overlay');
  await app.keyboard.press('Escape');
  await expect(help).toBeHidden();
  // Ctrl+/ opens it from inside the composer too.
  await composer.focus();
  await app.keyboard.press('Control+/');
  await expect(help).toBeVisible();
});

test('a gateway that dies mid-reply leaves the partial reply with a readable error', async ({ page: app, context }) => {
  await blockRealNetwork(context);
  // A slow demo model, so the gateway is surely still streaming when it goes away.
  const stack = await startStack({
    stateDir: await mkdtemp(join(tmpdir(), 'clearance-e2e-dying-')),
    demoTokensPerSecond: 8,
    log: () => {},
  });
  const harness = await startHarness({ stack });
  try {
    await app.goto(harness.url);
    await signIn(app, harness, 'Avery Stone');
    await chooseModel(app, 'Haiku 4');
    await app.getByRole('textbox', { name: 'Message' }).fill('Outline a plan for the ablation study.');
    await app.keyboard.press('Enter');
    const reply = rows(app).nth(1);
    await expect(reply.getByRole('heading', { name: /Haiku 4 on/ })).toBeVisible();
    await expect(app.getByRole('button', { name: 'Stop generating' })).toBeVisible();
    await saveScreenshot(app, 'chat-streaming');

    await stack.gateway.close();
    await expect(reply).toContainText('The reply was interrupted');
    await expect(reply).toContainText('Clearance lost its connection to the gateway. Try again once it is back.');
    // Plain words only: no address, port or error code in what the person reads…
    const shown = (await reply.getByText('The reply was interrupted').locator('..').textContent()) ?? '';
    expect(shown).not.toMatch(/https?:\/\/|127\.0\.0\.1|localhost|:\d{2,5}\b|\bE[A-Z]{3,}\b|other side closed|socket/i);
    // …and the technical detail behind "Details".
    const details = reply.getByText('Details', { exact: true });
    await expect(details).toBeVisible();
    await details.click();
    await expect(reply.locator('.message-error-details pre')).not.toBeEmpty();
    await expect(reply.getByRole('heading', { name: /Haiku 4 on/ })).toBeVisible();
    // Said once, by the page, because there is a partial reply to keep.
    expect((await reply.textContent())?.match(/was kept/g)).toHaveLength(1);
    await expect(app.getByRole('button', { name: 'Stop generating' })).toBeHidden();
    await expect(app.getByTestId('announcer')).toContainText('Response interrupted');
    const [, saved] = await storedMessages(harness);
    expect(saved?.status).toBe('error');
    expect(saved?.error?.code).toBe('GATEWAY_UNAVAILABLE');
    expect(saved?.content).toContain(DEMO_NOTICE);
    await saveScreenshot(app, 'chat-gateway-died');
  } finally {
    await harness.close();
    await stack.close();
  }
});
