import AxeBuilder from '@axe-core/playwright';
import type { Locator, Page } from '@playwright/test';
import { seedConversation } from '../main/conversations/seed';
import { expect, saveScreenshot, signIn, test } from './fixtures';
import type { Harness } from './harness/harness';

/** Two conversations whose titles start alike, as a week of the same project gives. */
const TITLES = [
  'Quarterly export review: tokenizer drift in the eval harness',
  'Quarterly export review: attention sinks in long context runs',
];

interface Box {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

async function box(locator: Locator): Promise<Box> {
  const found = await locator.boundingBox();
  if (!found) throw new Error(`${locator.toString()} has no box (not rendered)`);
  return found;
}

function overlaps(a: Box, b: Box): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

/** Fails on any serious or critical axe violation on the page as it is now. */
async function expectAccessible(page: Page, screen: string): Promise<void> {
  const results = await new AxeBuilder({ page }).analyze();
  expect(results.passes.length, `${screen}: axe checked nothing`).toBeGreaterThan(10);
  const blocking = results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.nodes.map((node) => node.target.join(' ')).join('; ')}`);
  expect(blocking, `${screen}: serious or critical accessibility violations`).toEqual([]);
}

/** Neither the window nor the models table scrolls sideways. */
async function expectNoSidewaysScroll(page: Page, where: string): Promise<void> {
  const widths = await page.evaluate(() => {
    const table = document.querySelector('.table-scroll');
    return {
      page: document.documentElement.scrollWidth - document.documentElement.clientWidth,
      table: table ? table.scrollWidth - table.clientWidth : 0,
    };
  });
  expect(widths, `${where}: sideways scroll`).toEqual({ page: 0, table: 0 });
}

async function seedTwo(harness: Harness): Promise<void> {
  const store = await harness.services.conversations();
  for (const title of TITLES) await seedConversation(store, { messages: 4, model: 'haiku-4', title });
}

/** My access: each restricted model's Why? button lies wholly inside the main pane, with nothing to scroll sideways. */
async function expectWhyButtonsInView(page: Page, where: string): Promise<void> {
  const main = await box(page.getByRole('main'));
  const whys = page.getByRole('button', { name: /^Why is .+ unavailable\?$/ });
  await expect(whys).toHaveCount(4);
  for (const why of await whys.all()) {
    await why.scrollIntoViewIfNeeded();
    const button = await box(why);
    const name = await why.getAttribute('aria-label');
    expect(button.x, `${where}: ${name} starts inside the pane`).toBeGreaterThanOrEqual(main.x);
    expect(button.x + button.width, `${where}: ${name} ends inside the pane`).toBeLessThanOrEqual(main.x + main.width);
    await expect(why).toBeInViewport();
  }
  await expectNoSidewaysScroll(page, where);
}

/** Deletes the first conversation (its toast offers Undo) and checks that the toast leaves Send uncovered. */
async function expectToastClearOfSend(page: Page, where: string): Promise<void> {
  await page.getByRole('button', { name: `Delete “${TITLES[0]}”` }).click();
  const toast = page.getByRole('region', { name: 'Notifications' }).getByRole('listitem');
  await expect(toast).toContainText('Deleted');
  const send = page.getByRole('button', { name: 'Send message' });
  await expect(send).toBeVisible();
  expect(overlaps(await box(toast), await box(send)), `${where}: the toast covers Send`).toBe(false);
  await toast.getByRole('button', { name: 'Undo' }).click();
  await expect(toast).toHaveCount(0);
}

for (const scheme of ['light', 'dark'] as const) {
  test.describe(`${scheme}`, () => {
    test.use({ colorScheme: scheme });

    test('at 900×700 My access shows every column and Why? button, titles tell conversations apart, toasts leave Send clear', async ({
      app,
      harness,
    }) => {
      await app.setViewportSize({ width: 900, height: 700 });
      await signIn(app, harness, 'Dana Kim');
      await expect(app.getByRole('textbox', { name: 'Message' })).toBeVisible();
      await seedTwo(harness);

      // The sidebar stays open at this size; each title shows two lines, in full on hover and to screen readers.
      const sidebar = app.getByRole('navigation', { name: 'Conversations' });
      await expect(sidebar).toBeVisible();
      await expect(app.getByRole('button', { name: 'Conversations' })).toBeHidden();
      for (const title of TITLES) {
        const item = sidebar.getByRole('button', { name: new RegExp(`^${title}`) });
        await expect(item).toHaveAttribute('title', title);
        const clamp = await item.locator('.conversation-title').evaluate((el) => ({
          lines: Math.round(el.clientHeight / parseFloat(getComputedStyle(el).lineHeight)),
        }));
        expect(clamp.lines, `"${title}" wraps to show more than its first words`).toBe(2);
      }
      await expectToastClearOfSend(app, `900×700 ${scheme}`);
      await expectAccessible(app, `chat at 900×700 (${scheme})`);
      await saveScreenshot(app, `${scheme}-900x700-chat`);

      // The search snippet is text, not Markdown (the seeded replies bold their topic).
      await sidebar.getByRole('searchbox', { name: 'Search conversations' }).fill('outliers');
      const snippet = sidebar.locator('.conversation-snippet').first();
      await expect(snippet).toContainText(/\w+ \w+ \w+ outliers/);
      await expect(snippet).not.toContainText('**');
      await saveScreenshot(app, `${scheme}-900x700-search`);

      await app.getByRole('button', { name: 'My access', exact: true }).click();
      await expect(app.getByRole('row', { name: /Atlas 3 Research/ })).toBeVisible();
      // Every column of a restricted model is on screen, inside the pane (stacked under its label when narrow).
      const pane = await box(app.getByRole('main'));
      for (const cell of await app
        .getByRole('row', { name: /Mythos 5/ })
        .getByRole('cell')
        .all()) {
        await expect(cell).toBeVisible();
        const cellBox = await box(cell);
        expect(cellBox.x + cellBox.width, `${await cell.textContent()} fits the pane`).toBeLessThanOrEqual(
          pane.x + pane.width,
        );
      }
      await expect(app.getByRole('row', { name: /Mythos 5/ }).getByRole('cell')).toHaveCount(5);
      await expectWhyButtonsInView(app, `My access at 900×700 (${scheme})`);
      await expectAccessible(app, `My access at 900×700 (${scheme})`);
      await saveScreenshot(app, `${scheme}-900x700-my-access`);
    });

    test.describe('at 200% zoom', () => {
      // 200 % zoom of a 1280×800 window: 640×400 CSS pixels, each drawn with two device pixels.
      test.use({ viewport: { width: 640, height: 400 }, deviceScaleFactor: 2 });

      test('the sidebar folds behind a toggle, toasts leave Send clear, and My access still fits', async ({
        app,
        harness,
      }) => {
        await signIn(app, harness, 'Dana Kim');
        await expect(app.getByRole('textbox', { name: 'Message' })).toBeVisible();
        await seedTwo(harness);

        const sidebar = app.getByRole('navigation', { name: 'Conversations' });
        const toggle = app.getByRole('button', { name: 'Conversations' });
        await expect(sidebar).toBeHidden();
        await expect(toggle).toHaveAttribute('aria-expanded', 'false');
        await toggle.click();
        await expect(toggle).toHaveAttribute('aria-expanded', 'true');
        await expect(sidebar).toBeVisible();
        await expect(sidebar.getByRole('button', { name: new RegExp(`^${TITLES[1]}`) })).toBeVisible();
        await expectAccessible(app, `sidebar open at 200% (${scheme})`);
        await saveScreenshot(app, `${scheme}-zoom200-sidebar`);
        await app.keyboard.press('Escape');
        await expect(sidebar).toBeHidden();
        await expect(toggle).toBeFocused();

        // Choosing a conversation puts the sidebar away and shows the conversation.
        await toggle.click();
        await sidebar.getByRole('button', { name: new RegExp(`^${TITLES[1]}`) }).click();
        await expect(sidebar).toBeHidden();
        await expect(app.getByRole('heading', { level: 1, name: TITLES[1] })).toBeVisible();
        await app.getByRole('textbox', { name: 'Message' }).fill('And the next step?');
        await toggle.click();
        await expectToastClearOfSend(app, `200% ${scheme}`);
        await app.keyboard.press('Escape');
        await expect(sidebar).toBeHidden();
        await expectNoSidewaysScroll(app, `chat at 200% (${scheme})`);
        await expectAccessible(app, `chat at 200% (${scheme})`);
        await saveScreenshot(app, `${scheme}-zoom200-chat`);

        await app.getByRole('button', { name: 'My access', exact: true }).click();
        await expectWhyButtonsInView(app, `My access at 200% (${scheme})`);
        await expectAccessible(app, `My access at 200% (${scheme})`);
        await saveScreenshot(app, `${scheme}-zoom200-my-access`);
      });
    });
  });
}
