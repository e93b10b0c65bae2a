import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayHarness, type GatewayHarness } from '../testing/gateway-harness';
import { testPersonas } from '../testing/identity-provider';

// Found by the attack pass: explain takes a user id or a username, but suspend and revoke took the
// path or body as an id only, so `POST /v1/admin/users/avery@…/suspend` answered
// `suspended: true` and the person went on chatting. They now resolve a username as explain does.

let harness: GatewayHarness;
let adminToken: string;

beforeAll(async () => {
  harness = await startGatewayHarness();
  adminToken = readFileSync(join(harness.stateDir, 'gateway', 'admin-token'), 'utf8').trim();
});

afterAll(async () => {
  await harness?.close();
});

async function admin(path: string, body: unknown): Promise<Response> {
  return fetch(`${harness.gateway.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

const chatBody = { model: 'haiku-4', messages: [{ role: 'user', content: 'hello' }] };

describe('admin calls that name a user by username', () => {
  it('suspends and resumes the user the username belongs to', async () => {
    const persona = testPersonas.usResearcher;
    const client = await harness.signIn(persona);
    const suspended = await admin(`/v1/admin/users/${encodeURIComponent(persona.username)}/suspend`, {
      actor: 'it@clearance.example',
    });
    expect(suspended.status).toBe(200);
    expect(await suspended.json()).toMatchObject({ user: persona.id, suspended: true, changed: true });

    const refused = await client.request('POST', '/v1/chat/completions', { body: chatBody });
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ reason: 'ACCOUNT_SUSPENDED' });
    const records = await harness.gateway.audit.list({ limit: 10_000 });
    expect(records.find((r) => r.kind === 'admin' && r.data.action === 'users.suspend')?.subject).toBe(persona.id);

    const resumed = await admin(`/v1/admin/users/${encodeURIComponent(persona.username)}/resume`, {});
    expect(resumed.status).toBe(200);
    expect(await resumed.json()).toMatchObject({ user: persona.id, suspended: false, changed: true });
    const again = await client.request('POST', '/v1/chat/completions', { body: chatBody });
    expect(again.status).toBe(200);
    await again.text();
  });

  it('revokes the devices of the user the username belongs to', async () => {
    const persona = testPersonas.fnResearcher;
    const client = await harness.signIn(persona);
    const revoked = await admin('/v1/admin/revoke', { user: persona.username });
    expect(revoked.status).toBe(200);
    expect(await revoked.json()).toEqual({ revoked: [client.device.jkt] });
    const refused = await client.request('GET', '/v1/models');
    expect(refused.status).toBe(401);
    await refused.text();
  });

  it('still suspends an id nobody has signed in with yet, ahead of their first sign-in', async () => {
    const suspended = await admin('/v1/admin/users/not-yet-seen/suspend', {});
    expect(suspended.status).toBe(200);
    expect(await suspended.json()).toMatchObject({ user: 'not-yet-seen', suspended: true });
  });
});

describe('the person acting on a policy reload', () => {
  // Found by the attack pass: every admin call is documented to take an optional actor, but the
  // reload refused one (400) and always recorded "admin-token", so IT could not say who forced a
  // reload that accepted removed rules.
  it('records the actor given with the reload in the audit', async () => {
    const response = await admin('/v1/admin/policies/reload', { actor: 'it-oncall@clearance.example' });
    expect(response.status).toBe(200);
    await response.text();
    const records = await harness.gateway.audit.list({ limit: 10_000 });
    const reload = records.filter((r) => r.kind === 'admin' && r.data.action === 'policies.reload').at(-1);
    expect(reload?.data).toMatchObject({ actor: 'it-oncall@clearance.example', credential: 'admin-token' });
  });
});
