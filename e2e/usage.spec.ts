import { expect, saveScreenshot, signIn, test } from './fixtures';

test('a finished reply shows its token usage quietly next to its time', async ({ app, harness }) => {
  await signIn(app, harness, 'Avery Stone');
  await app.getByRole('textbox', { name: 'Message' }).fill('How should we track experiment provenance?');
  await app.getByRole('button', { name: 'Send message' }).click();
  const reply = app.getByTestId('message-list').getByTestId('message-row').nth(1);
  await expect(reply.getByRole('button', { name: 'Regenerate' })).toBeVisible({ timeout: 30_000 });
  const usage = reply.locator('.message-usage');
  await expect(usage).toHaveText(/^\d[\d,]* tokens$/);
  await expect(usage).toHaveAttribute('title', /tokens in the prompt, [\d,]+ in the reply$/);
  const store = await harness.services.conversations();
  const [summary] = await store.list();
  const [, saved] = (await store.get(summary!.id)).messages;
  expect(saved?.usage?.totalTokens).toBe(saved!.usage!.promptTokens + saved!.usage!.completionTokens);
  await usage.scrollIntoViewIfNeeded();
  await saveScreenshot(app, 'reply-usage');
});
