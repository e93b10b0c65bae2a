import type { ClearanceApi } from '../shared/ipc';
import { expect, saveScreenshot, test } from './fixtures';

declare global {
  interface Window {
    readonly clearance: ClearanceApi;
  }
}

test('opens the app through the harness and shows the sign-in screen', async ({ app }) => {
  await expect(app).toHaveTitle('Clearance');
  await expect(app.getByRole('button', { name: /sign in/i })).toBeVisible();
  const info = await app.evaluate(() => window.clearance.getAppInfo({}));
  expect(info).toMatchObject({ ok: true, value: { name: 'Clearance', shell: 'harness' } });
  await saveScreenshot(app, 'first-screen');
});

test('a malformed IPC payload gets a typed error and the app keeps working', async ({ app }) => {
  await expect(app.getByRole('button', { name: /sign in/i })).toBeVisible();
  const bad = await app.evaluate(() =>
    // Deliberately outside the contract: the page is untrusted input to main.
    (window.clearance.getConversation as (request: unknown) => Promise<unknown>)({ id: 42, extra: '../../etc' }),
  );
  expect(bad).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST', issues: expect.any(Array) } });
  const unknown = await app.evaluate(() => (window.clearance as unknown as Record<string, unknown>).readFile);
  expect(unknown).toBeUndefined();
  // Still answering, still showing the same screen.
  const info = await app.evaluate(() => window.clearance.getAppInfo({}));
  expect(info).toMatchObject({ ok: true });
  await expect(app.getByRole('button', { name: /sign in/i })).toBeEnabled();
});

test('the page cannot replace window.clearance or reach Node', async ({ app }) => {
  const result = await app.evaluate(() => {
    const before = window.clearance;
    try {
      (window as unknown as { clearance: unknown }).clearance = {};
    } catch {
      // Strict-mode assignment to a read-only property throws; either way it must not change.
    }
    return {
      same: window.clearance === before,
      hasRequire: typeof (window as unknown as { require?: unknown }).require,
      hasProcess: typeof (window as unknown as { process?: unknown }).process,
    };
  });
  expect(result).toEqual({ same: true, hasRequire: 'undefined', hasProcess: 'undefined' });
});
