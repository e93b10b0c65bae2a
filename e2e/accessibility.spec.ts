import AxeBuilder from '@axe-core/playwright';
import type { Page } from '@playwright/test';
import { seedConversation } from '../main/conversations/seed';
import { expect, saveScreenshot, signIn, test } from './fixtures';

type Scheme = 'light' | 'dark';

/** The page background each theme paints (tokens.css `--bg`), to prove the theme under test is the one shown. */
const background: Readonly<Record<Scheme, string>> = {
  light: 'rgb(255, 255, 255)',
  dark: 'rgb(15, 18, 22)',
};

/**
 * Runs axe on the whole page and fails on any serious or critical violation, naming each offending
 * element; minor and moderate findings are printed so they stay visible without failing the run.
 */
async function expectAccessible(page: Page, screen: string): Promise<void> {
  const results = await new AxeBuilder({ page }).analyze();
  // A run that checked nothing would pass vacuously.
  expect(results.passes.length, `${screen}: axe checked nothing`).toBeGreaterThan(10);
  const describe = (violation: (typeof results.violations)[number]) =>
    `${violation.impact} ${violation.id}: ${violation.help} — ${violation.nodes
      .map(
        (node) =>
          `${node.target.join(' ')}${node.failureSummary ? ` (${node.failureSummary.replace(/\s+/g, ' ')})` : ''}`,
      )
      .join('; ')}`;
  const blocking = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const violation of results.violations.filter((v) => !blocking.includes(v))) {
    console.log(`[axe] ${screen}: ${describe(violation)}`);
  }
  expect(blocking.map(describe), `${screen}: serious or critical accessibility violations`).toEqual([]);
}

/** Asserts the page is painted in `scheme`, then checks it with axe and saves a screenshot. */
async function checkScreen(page: Page, scheme: Scheme, screen: string): Promise<void> {
  await expect
    .poll(() => page.evaluate(() => getComputedStyle(document.body).backgroundColor))
    .toBe(background[scheme]);
  await expectAccessible(page, `${screen} (${scheme})`);
  await saveScreenshot(page, `${scheme}-${screen}`);
}

for (const scheme of ['light', 'dark'] as const) {
  test.describe(`${scheme} theme (System, the OS asks for ${scheme})`, () => {
    test.use({ colorScheme: scheme });

    test.describe('on a non-compliant device', () => {
      test.use({ device: 'noncompliant' });

      test('the sign-in screen and the device gate have no serious violations', async ({ app, harness }) => {
        await expect(app.getByRole('button', { name: /^sign in/i })).toBeVisible();
        await checkScreen(app, scheme, 'sign-in');
        await signIn(app, harness, 'Avery Stone');
        await expect(app.getByTestId('device-gate').getByRole('list', { name: 'Device checks' })).toBeVisible();
        await checkScreen(app, scheme, 'device-gate');
      });
    });

    test('the chat with a conversation open has no serious violations', async ({ app, harness }) => {
      // A saved conversation with prose, a code block and a table, as a finished reply shows them.
      await signIn(app, harness, 'Avery Stone');
      await expect(app.getByRole('textbox', { name: 'Message' })).toBeVisible();
      await seedConversation(await harness.services.conversations(), {
        messages: 4,
        model: 'haiku-4',
        title: 'Eval harness follow-up',
      });
      await app
        .getByRole('navigation', { name: 'Conversations' })
        .getByRole('button', { name: /Eval harness follow-up/ })
        .first()
        .click();
      const rows = app.getByTestId('message-row');
      await expect(rows).toHaveCount(4);
      await expect(rows.nth(1).locator('pre code')).toContainText('def check_1');
      await expect(rows.nth(1).getByRole('table')).toBeVisible();
      await expect(app.getByRole('textbox', { name: 'Message' })).toBeVisible();
      await checkScreen(app, scheme, 'chat');
    });

    test('the picker, the Why panel, My access and the shortcuts have no serious violations', async ({
      app,
      harness,
    }) => {
      await signIn(app, harness, 'Bao Nguyen');
      await expect(app.getByRole('textbox', { name: 'Message' })).toBeVisible();

      await app.getByRole('combobox', { name: 'Model' }).click();
      const mythos = app.getByRole('listbox').getByRole('option', { name: /Mythos 5/ });
      await expect(mythos).toHaveAttribute('aria-disabled', 'true');
      await checkScreen(app, scheme, 'picker');

      await app.getByTestId('why-mythos-5').click();
      const why = app.getByRole('dialog', { name: 'Why is Mythos 5 unavailable?' });
      await expect(why).toContainText('EC-2026-06');
      await checkScreen(app, scheme, 'why-panel');
      await app.keyboard.press('Escape');
      await expect(why).toBeHidden();

      await app.getByRole('button', { name: 'My access', exact: true }).click();
      await expect(app.getByRole('table').getByRole('row', { name: /Mythos 5/ })).toBeVisible();
      await expect(app.getByTestId('live-state')).toHaveAttribute('data-live', 'connected');
      await checkScreen(app, scheme, 'my-access');

      await app.getByRole('button', { name: 'Help and keyboard shortcuts' }).click();
      await app.getByRole('menuitem', { name: 'Keyboard shortcuts' }).click();
      const shortcuts = app.getByRole('dialog', { name: 'Keyboard shortcuts' });
      await expect(shortcuts.getByRole('row')).not.toHaveCount(0);
      await checkScreen(app, scheme, 'shortcuts');
    });
  });
}

test('the theme button forces dark over a light OS, and the chat stays accessible in it', async ({ app, harness }) => {
  await signIn(app, harness, 'Bao Nguyen');
  const themeButton = app.getByRole('button', { name: /^Theme: / });
  for (let i = 0; i < 3 && !/^Theme: Dark/.test((await themeButton.getAttribute('aria-label')) ?? ''); i++) {
    await themeButton.click();
  }
  await expect(themeButton).toHaveAccessibleName(/^Theme: Dark/);
  await expect(app.locator('html')).toHaveAttribute('data-theme', 'dark');
  await app.getByRole('combobox', { name: 'Model' }).click();
  await expect(app.getByRole('listbox')).toBeVisible();
  await checkScreen(app, 'dark', 'forced-dark-picker');
});

test('the signed-in app fills the window at any size, and a short window scrolls My access instead of squeezing it', async ({
  app,
  harness,
}) => {
  await signIn(app, harness, 'Bao Nguyen');
  const sidebar = app.getByRole('navigation', { name: 'Conversations' });
  const main = app.getByRole('main');
  const header = app.getByRole('banner');
  for (const viewport of [
    { width: 1280, height: 820 },
    { width: 1600, height: 1000 },
    { width: 860, height: 600 },
  ]) {
    await app.setViewportSize(viewport);
    for (const view of ['Chat', 'My access']) {
      await app.getByRole('button', { name: view, exact: true }).click();
      await expect(app.getByRole('heading', { level: 1 }).first()).toBeVisible();
      const headerBox = await header.boundingBox();
      for (const region of [sidebar, main]) {
        const box = await region.boundingBox();
        const where = `${view} at ${viewport.width}×${viewport.height}`;
        expect(box?.y, where).toBeCloseTo((headerBox?.y ?? 0) + (headerBox?.height ?? 0), 0);
        expect((box?.y ?? 0) + (box?.height ?? 0), where).toBeCloseTo(viewport.height, 0);
      }
      // The window never scrolls as a whole, either way: each pane scrolls on its own.
      const page = await app.evaluate(() => ({
        width: document.documentElement.scrollWidth,
        height: document.documentElement.scrollHeight,
      }));
      expect(page, `${view} at ${viewport.width}×${viewport.height}`).toEqual(viewport);
    }
  }

  // In the short window the models table keeps its full height; the page scrolls to it.
  const table = app.getByRole('table');
  const scroller = app.getByRole('group', { name: 'Models and your access' });
  await scroller.scrollIntoViewIfNeeded();
  const [tableBox, scrollerBox] = [await table.boundingBox(), await scroller.boundingBox()];
  expect(scrollerBox?.height).toBeGreaterThanOrEqual((tableBox?.height ?? Infinity) - 1);
  await expect(table.getByRole('row', { name: /Tempest 1/ })).toBeInViewport();
  await saveScreenshot(app, 'my-access-short-window');
});

test('the axe check fails on a serious violation, so a pass means something', async ({ app }) => {
  await expect(app.getByRole('button', { name: /^sign in/i })).toBeVisible();
  await app.evaluate(() => {
    const faint = document.createElement('p');
    faint.textContent = 'Barely readable';
    faint.style.color = '#d0d0d0';
    faint.style.background = '#ffffff';
    const nameless = document.createElement('button');
    nameless.type = 'button';
    document.querySelector('main')?.append(faint, nameless);
  });
  const failure = await expectAccessible(app, 'sign-in with planted faults').then(
    () => undefined,
    (error: unknown) => String(error),
  );
  expect(failure).toMatch(/color-contrast/);
  expect(failure).toMatch(/button-name/);
});
