import type { Locator } from '@playwright/test';
import { seedConversation } from '../main/conversations/seed';
import { expect, saveScreenshot, signIn, test } from './fixtures';

const MESSAGES = 10_000;
/** Far fewer than the conversation holds: only the rows in view, plus the overscan, are mounted. */
const MOUNTED_LIMIT = 100;

async function mountedIndexes(rows: Locator): Promise<number[]> {
  return rows.evaluateAll((elements) => elements.map((element) => Number(element.getAttribute('data-index'))));
}

test('a 10,000-message conversation opens at its last message and scrolls to its first with few rows mounted', async ({
  app,
  harness,
}) => {
  // Conversations belong to the person signed in, so the seed goes into Avery's profile once she is.
  await signIn(app, harness, 'Avery Stone');
  await expect(app.getByRole('textbox', { name: 'Message' })).toBeVisible();
  const seeded = await seedConversation(await harness.services.conversations(), {
    messages: MESSAGES,
    model: 'haiku-4',
    title: 'Ten thousand messages',
  });
  expect(seeded.messageCount).toBe(MESSAGES);

  const list = app.getByTestId('message-list');
  const rows = list.getByTestId('message-row');
  const item = app.getByRole('navigation', { name: 'Conversations' }).getByTestId('conversation-item');
  await expect(item).toHaveCount(1);

  const started = Date.now();
  await item.getByRole('button', { name: /^Ten thousand messages/ }).click();
  const lastRow = rows.filter({ hasText: `Message ${MESSAGES}:` });
  await expect(lastRow).toBeInViewport();
  console.log(`opened a ${MESSAGES.toLocaleString('en')}-message conversation in ${Date.now() - started} ms`);

  const atEnd = await mountedIndexes(rows);
  console.log(`rows mounted at the end: ${atEnd.length} (indexes ${Math.min(...atEnd)}–${Math.max(...atEnd)})`);
  expect(atEnd.length).toBeGreaterThan(0);
  expect(atEnd.length).toBeLessThan(MOUNTED_LIMIT);
  expect(Math.max(...atEnd)).toBe(MESSAGES - 1);
  await saveScreenshot(app, 'long-conversation-end');

  // Halfway down, the rows mounted are those around the middle.
  await list.evaluate((element) => element.scrollTo({ top: element.scrollHeight / 2 }));
  await expect
    .poll(async () => {
      const middle = await mountedIndexes(rows);
      return middle.length > 0 && Math.min(...middle) > 1_000 && Math.max(...middle) < MESSAGES - 1_000;
    })
    .toBe(true);
  expect(await rows.count()).toBeLessThan(MOUNTED_LIMIT);

  // Home in the focused list goes to the top, where the first message is.
  await list.focus();
  await app.keyboard.press('Home');
  const firstRow = rows.filter({ hasText: 'Message 1: what should we check next about tokenizer drift?' });
  await expect(firstRow).toBeInViewport();
  const atTop = await mountedIndexes(rows);
  console.log(`rows mounted at the top: ${atTop.length} (indexes ${Math.min(...atTop)}–${Math.max(...atTop)})`);
  expect(Math.min(...atTop)).toBe(0);
  expect(atTop.length).toBeGreaterThan(0);
  expect(atTop.length).toBeLessThan(MOUNTED_LIMIT);
  await saveScreenshot(app, 'long-conversation-top');

  // End goes back to the latest message.
  await app.keyboard.press('End');
  await expect(lastRow).toBeInViewport();
  expect(await rows.count()).toBeLessThan(MOUNTED_LIMIT);
});
