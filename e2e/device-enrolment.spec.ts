import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack, type RunningStack } from '../gateway/stack';
import { enrolmentMessages } from '../shared/reasons';
import { test as base, expect, saveScreenshot, signIn } from './fixtures';

/** A demo stack whose gateway keeps each new device pending until IT approves it. */
const test = base.extend<object, { readonly stack: RunningStack }>({
  stack: [
    // Playwright requires an object pattern for a fixture's first argument, even with no dependencies.
    // eslint-disable-next-line no-empty-pattern
    async ({}, use) => {
      const stack = await startStack({
        stateDir: await mkdtemp(join(tmpdir(), 'clearance-e2e-approval-stack-')),
        demoTokensPerSecond: 200,
        deviceTrust: { enrolmentPolicy: 'approval' },
        log: () => {},
      });
      await use(stack);
      await stack.close();
    },
    { scope: 'worker' },
  ],
});

test('a new device waits for approval with the reason, and is let in once IT approves it', async ({
  app,
  harness,
  stack,
}) => {
  await signIn(app, harness, 'Avery Stone');
  const gate = app.getByTestId('device-gate');
  await expect(gate.getByRole('heading', { level: 1 })).toHaveText('Device waiting for approval');
  await expect(gate.getByTestId('device-enrolment')).toContainText(enrolmentMessages.DEVICE_ENROLMENT_PENDING);
  await expect(app.getByRole('combobox', { name: 'Model' })).toBeHidden();
  await saveScreenshot(app, 'device-pending-approval');

  // IT approves the device the gateway lists as pending, with who did it.
  const key = await harness.services.access.keys.load();
  const persona = stack.personas.find((p) => p.name === 'Avery Stone')!;
  const admin = (path: string, body?: unknown) =>
    fetch(`${stack.gatewayUrl}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: {
        authorization: `Bearer ${stack.adminToken}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const pending = (await (await admin('/v1/admin/devices?status=pending')).json()) as {
    devices: { userId: string; jkt: string }[];
  };
  expect(pending.devices).toContainEqual(expect.objectContaining({ userId: persona.id, jkt: key.thumbprint }));
  const approved = await admin('/v1/admin/devices/approve', {
    user: persona.id,
    jkt: key.thumbprint,
    actor: 'it-admin@lab.example',
  });
  expect(approved.status).toBe(200);

  await gate.getByRole('button', { name: 'Check again' }).click();
  await expect(gate).toBeHidden();
  await expect(app.getByRole('combobox', { name: 'Model' })).toBeVisible();
});
