import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProblemDetails } from '../../shared/problem';
import { CLIENT_EVENT, problemType, SESSION_REVOKED_REASON } from '../../shared/protocol';
import { startGatewayHarness, type GatewayHarness } from '../testing/gateway-harness';
import { testPersonas } from '../testing/identity-provider';
import { SseReader, TestDevice } from '../testing/device-client';
import { openGatewayDatabase } from './database';
import { SqliteUserSuspensions } from './user-suspensions';

async function expectSuspended(response: Response): Promise<ProblemDetails> {
  expect(response.status).toBe(403);
  const body = ProblemDetails.parse(await response.json());
  expect(body.type).toBe(problemType('account-suspended'));
  expect(body.reason).toBe('ACCOUNT_SUSPENDED');
  expect(body.decisionId).toMatch(/^dec_/);
  return body;
}

describe('user suspension', () => {
  let harness: GatewayHarness;
  const admin = (path: string, body: unknown = {}, token?: string) =>
    fetch(`${harness.gateway.url}/v1/admin/users/${encodeURIComponent(testPersonas.fnResearcher.id)}/${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token ?? harness.gateway.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  beforeAll(async () => {
    harness = await startGatewayHarness({ demoTokensPerSecond: 20 });
  });
  afterAll(async () => {
    await harness?.close();
  });

  it('refuses a caller without the admin token and suspends nobody', async () => {
    expect((await admin('suspend', {}, 'not-the-token')).status).toBe(401);
    const client = await harness.signIn(testPersonas.fnResearcher);
    expect((await client.request('GET', '/v1/models')).status).toBe(200);
  });

  it('cuts the streams of every device, refuses every call, and a new key cannot enrol', async () => {
    const first = await harness.signIn(testPersonas.fnResearcher);
    const second = await harness.signIn(testPersonas.fnResearcher, await TestDevice.create());
    const events = new SseReader(await first.request('GET', '/v1/events'));
    expect((await events.next())?.event).toBe(CLIENT_EVENT.entitlementsChanged);
    const running = await second.request('POST', '/v1/chat/completions', {
      body: { model: 'haiku-4', stream: true, messages: [{ role: 'user', content: 'a long answer please' }] },
    });
    expect(running.status).toBe(200);
    const stream = new SseReader(running);
    await stream.next();

    const suspended = await admin('suspend', { reason: 'left the project' });
    expect(suspended.status).toBe(200);
    expect(await suspended.json()).toMatchObject({ suspended: true, changed: true });

    const revoked = await events.next();
    expect(revoked?.event).toBe(CLIENT_EVENT.sessionRevoked);
    expect(JSON.parse(revoked!.data)).toMatchObject({ reason: SESSION_REVOKED_REASON.accountSuspended });
    let cut;
    do cut = await stream.next();
    while (cut && cut.event !== 'error');
    expect(JSON.parse(cut!.data)).toMatchObject({ reason: 'ACCOUNT_SUSPENDED', status: 403 });

    await expectSuspended(await first.request('GET', '/v1/entitlements'));
    await expectSuspended(await second.request('GET', '/v1/models'));
    const newcomer = await TestDevice.create();
    await expect(harness.signIn(testPersonas.fnResearcher, newcomer)).rejects.toThrow(/challenge failed: 403/);
    expect(await harness.gateway.devices.find(testPersonas.fnResearcher.id, newcomer.jkt)).toBeUndefined();
    const challenge = await fetch(`${harness.gateway.url}/v1/device/challenge`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await harness.idp.mint(testPersonas.fnResearcher)}` },
    });
    const problem = await expectSuspended(challenge);
    expect((await harness.gateway.audit.get(problem.decisionId!))?.data).toMatchObject({
      effect: 'deny',
      reason: 'ACCOUNT_SUSPENDED',
    });

    const others = await harness.signIn(testPersonas.usResearcher);
    expect((await others.request('GET', '/v1/models')).status).toBe(200);

    const records = await harness.gateway.audit.list({ limit: 10_000 });
    expect(records.find((r) => r.data.action === 'users.suspend')).toMatchObject({
      kind: 'admin',
      subject: testPersonas.fnResearcher.id,
      data: { actor: 'admin-token', reason: 'left the project' },
    });
  });

  it('lets the user back in once resumed', async () => {
    const resumed = await admin('resume');
    expect(resumed.status).toBe(200);
    expect(await resumed.json()).toMatchObject({ suspended: false, changed: true });
    const client = await harness.signIn(testPersonas.fnResearcher, await TestDevice.create());
    expect((await client.request('GET', '/v1/models')).status).toBe(200);
    const records = await harness.gateway.audit.list({ limit: 10_000 });
    expect(records.filter((r) => r.data.action === 'users.resume').at(-1)?.data).toMatchObject({
      actor: 'admin-token',
    });
  });
});

describe('SqliteUserSuspensions', () => {
  it('stores one suspension per user until it is resumed', async () => {
    const db = openGatewayDatabase(':memory:');
    const store = new SqliteUserSuspensions(db, () => new Date('2026-11-28T10:00:00Z'));
    expect(await store.suspend('u1', 'admin-token', 'why')).toBe(true);
    expect(await store.suspend('u1', 'someone-else')).toBe(false);
    expect(await store.find('u1')).toEqual({
      userId: 'u1',
      suspendedAt: '2026-11-28T10:00:00.000Z',
      suspendedBy: 'admin-token',
      reason: 'why',
    });
    expect(await store.find('u2')).toBeUndefined();
    expect(await store.resume('u1')).toBe(true);
    expect(await store.resume('u1')).toBe(false);
    expect(await store.find('u1')).toBeUndefined();
    db.close();
  });
});
