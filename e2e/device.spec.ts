import type { Page } from '@playwright/test';
import { GatewayTestClient, PASSING_CHECKS, TestDevice } from '../gateway/testing/device-client';
import { signInWithDevProvider } from '../gateway/testing/idp-sign-in';
import type { IpcResult } from '../shared/ipc';
import { expect, saveScreenshot, signIn, test } from './fixtures';

/** Every posture check the gate must list, by the name people read. */
const everyCheck = [
  'Operating system version',
  'Disk encryption',
  'Screen lock',
  'Firewall',
  'Managed device',
  'App integrity',
];

/** What the recorded non-compliant device fails (disk not encrypted, firewall off). */
const failing = ['Disk encryption', 'Firewall'];

/**
 * Records in the page whether the gate's button ever showed "Checking…" while disabled and busy,
 * however briefly: the recorded device answers faster than a poll could see.
 */
async function watchForCheckingProgress(app: Page): Promise<void> {
  await app.evaluate(() => {
    const seen = { progress: false };
    (window as unknown as { __gateProgress: typeof seen }).__gateProgress = seen;
    const look = () => {
      for (const button of document.querySelectorAll<HTMLButtonElement>('[data-testid="device-gate"] button')) {
        if (/Checking…/.test(button.textContent ?? '') && button.disabled && button.ariaBusy === 'true') {
          seen.progress = true;
        }
      }
    };
    new MutationObserver(look).observe(document.body, {
      subtree: true,
      childList: true,
      characterData: true,
      attributes: true,
    });
  });
}

test.describe('on the recorded non-compliant device', () => {
  test.use({ device: 'noncompliant' });

  test('a persona is stopped at the device gate listing every check, the failing ones with their fix', async ({
    app,
    harness,
  }) => {
    await signIn(app, harness, 'Avery Stone');
    const gate = app.getByTestId('device-gate');
    await expect(gate).toBeVisible();
    await expect(gate.getByRole('heading', { level: 1 })).toHaveText('This device needs attention');
    const checks = gate.getByRole('list', { name: 'Device checks' }).getByRole('listitem');
    await expect(checks).toHaveCount(everyCheck.length);
    expect((await checks.locator('.check-name').allTextContents()).sort()).toEqual([...everyCheck].sort());

    for (const name of everyCheck) {
      const item = checks.filter({ has: app.locator('.check-name', { hasText: name }) });
      if (failing.includes(name)) {
        await expect(item.locator('.check-status')).toHaveText('Failed');
        await expect(item.locator('.check-fix')).toContainText(/^What to do: \S.{10,}/);
      } else {
        await expect(item.locator('.check-status')).toHaveText('Passed');
        await expect(item.locator('.check-fix')).toHaveCount(0);
      }
    }
    await expect(gate).toContainText('2 required checks are not passing');
    await expect(gate.getByText(/device key/)).toContainText('(software)');
    // Whom to ask comes from discovery, and each fix can be copied.
    await expect(gate.getByTestId('device-gate-contact')).toContainText(/Contact \S+@\S+/);
    await expect(gate.getByRole('button', { name: 'Copy what to do for Firewall' })).toBeVisible();
    await expect(gate.getByRole('button', { name: 'Copy details for IT' })).toBeVisible();
    await expect(app.getByRole('textbox', { name: 'Message' })).toHaveCount(0);
    await saveScreenshot(app, 'device-gate');

    // Check again: shows progress, asks main to run the checks again, and stays blocked.
    await watchForCheckingProgress(app);
    const checkedBefore = harness.services.access.deviceStatus.checkedAt;
    expect(checkedBefore).toBeTruthy();
    await gate.getByRole('button', { name: 'Check again' }).click();
    await expect
      .poll(() => app.evaluate(() => (window as unknown as { __gateProgress: { progress: boolean } }).__gateProgress))
      .toEqual({ progress: true });
    await expect(gate.getByRole('button', { name: 'Check again' })).toBeEnabled();
    // Main really ran the checks again (the recorded device answers the same way each time).
    await expect.poll(() => harness.services.access.deviceStatus.checkedAt).not.toBe(checkedBefore);
    await expect(gate).toBeVisible();
    await expect(checks.filter({ hasText: 'Failed' })).toHaveCount(failing.length);
    await expect(app.getByRole('textbox', { name: 'Message' })).toHaveCount(0);
  });

  test('no call for a restricted model succeeds: not from the page, not against the gateway directly', async ({
    app,
    harness,
    stack,
  }) => {
    await signIn(app, harness, 'Bao Nguyen');
    await expect(app.getByTestId('device-gate')).toBeVisible();

    // The page asks main to chat anyway: main refuses, with an error a person can read.
    const result = await app.evaluate(async () => {
      const api = (
        window as unknown as {
          clearance: { sendChat(request: { model: string; content: string }): Promise<IpcResult<unknown>> };
        }
      ).clearance;
      return api.sendChat({ model: 'mythos-5', content: 'x' });
    });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.message).toMatch(/\w{10,}/);
    await expect(app.getByRole('textbox', { name: 'Message' })).toHaveCount(0);

    // The gateway enforces the same on its own: the recorded device's checks, attested by a fresh
    // device key for a persona who may otherwise use Mythos 5, get a 403 naming the device.
    const idpToken = await signInWithDevProvider(stack, 'us-researcher');
    const client = new GatewayTestClient(stack.gatewayUrl, await TestDevice.create());
    const recorded = harness.services.access.deviceStatus.checks;
    expect(recorded.filter((check) => check.status === 'fail').map((check) => check.id)).toEqual([
      'disk-encryption',
      'firewall',
    ]);
    const session = await client.signIn(idpToken, { checks: [...recorded] });
    expect(session.device).toMatchObject({ compliant: false, failedChecks: ['disk-encryption', 'firewall'] });
    // A caller that asks for problem details gets the refusal as problem+json (others get application/json).
    const denied = await client.request('POST', '/v1/chat/completions', {
      body: { model: 'mythos-5', messages: [{ role: 'user', content: 'x' }] },
      headers: { accept: 'application/problem+json' },
    });
    expect(denied.status).toBe(403);
    expect(denied.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await denied.json()).toMatchObject({ status: 403, reason: 'DEVICE_NOT_COMPLIANT' });

    // The same persona and call from a compliant device go through: the 403 was the device's doing.
    const compliant = new GatewayTestClient(stack.gatewayUrl, await TestDevice.create());
    await compliant.signIn(idpToken, { checks: [...PASSING_CHECKS] });
    const allowed = await compliant.request('POST', '/v1/chat/completions', {
      body: { model: 'mythos-5', messages: [{ role: 'user', content: 'x' }] },
    });
    expect(allowed.status).toBe(200);
    await allowed.body?.cancel();
  });
});

test('a persona on a compliant device reaches the chat', async ({ app, harness }) => {
  await signIn(app, harness, 'Avery Stone');
  await expect(app.getByRole('textbox', { name: 'Message' })).toBeVisible();
  await expect(app.getByTestId('device-gate')).toHaveCount(0);
});
