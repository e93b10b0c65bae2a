import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProblemDetails } from '../../shared/problem';
import type { RequestLogEntry } from '../server';
import { startGatewayHarness, type GatewayHarness } from '../testing/gateway-harness';
import { testPersonas } from '../testing/identity-provider';
import type { AuditRecord } from '../store/audit-log';

// Every decision and administrative act leaves an audit record, and the record, the response and
// the request log share one request id (issue 10, item 8).

let harness: GatewayHarness;
const requestLog: RequestLogEntry[] = [];

beforeAll(async () => {
  harness = await startGatewayHarness({ requestLog: (entry) => requestLog.push(entry) });
});

afterAll(async () => {
  await harness?.close();
});

async function records(): Promise<readonly AuditRecord[]> {
  return harness.gateway.audit.list({ limit: 10_000 });
}

async function recordOf(response: Response): Promise<AuditRecord> {
  const body = ProblemDetails.parse(await response.json());
  expect(body.decisionId).toMatch(/^dec_[0-9a-f]{32}$/);
  const record = await harness.gateway.audit.get(body.decisionId!);
  expect(record).toBeDefined();
  return record!;
}

const admin = (path: string, init: { method?: string; body?: unknown; token?: string } = {}) =>
  fetch(`${harness.gateway.url}${path}`, {
    method: init.method ?? 'POST',
    headers: {
      authorization: `Bearer ${init.token ?? harness.gateway.adminToken}`,
      ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });

describe('the audit records', () => {
  it('a 401 with the request id shared by the response, the request log and the record', async () => {
    const response = await fetch(`${harness.gateway.url}/v1/models`, {
      headers: { authorization: 'DPoP not-a-token', 'x-request-id': 'trace-401.audit' },
    });
    expect(response.status).toBe(401);
    expect(response.headers.get('x-request-id')).toBe('trace-401.audit');
    const record = await recordOf(response);
    expect(record).toMatchObject({
      kind: 'access',
      subject: null,
      data: { effect: 'deny', status: 401, endpoint: 'GET /v1/models', requestId: 'trace-401.audit' },
    });
    expect(requestLog.find((entry) => entry.requestId === 'trace-401.audit')).toMatchObject({ status: 401 });
  });

  it('the request id of an allowed completion on its allow record', async () => {
    const client = await harness.signIn(testPersonas.usResearcher);
    const response = await client.request('POST', '/v1/chat/completions', {
      body: { model: 'haiku-4', messages: [{ role: 'user', content: 'hello' }] },
      headers: { 'x-request-id': 'trace-allow-1' },
    });
    expect(response.status).toBe(200);
    const decisionId = response.headers.get('x-clearance-decision-id');
    expect((await harness.gateway.audit.get(decisionId!))?.data).toMatchObject({
      effect: 'allow',
      model: 'haiku-4',
      requestId: 'trace-allow-1',
    });
  });

  it('a failed admin authentication, and the act it attempted did not happen', async () => {
    const before = (await records()).length;
    const response = await admin(`/v1/admin/users/${testPersonas.fnResearcher.id}/suspend`, {
      token: 'x'.repeat(43),
      body: { reason: 'guessing the token' },
    });
    expect(response.status).toBe(401);
    const record = await recordOf(response);
    expect(record).toMatchObject({
      kind: 'admin',
      data: {
        action: 'admin.auth-failed',
        effect: 'deny',
        status: 401,
        endpoint: `POST /v1/admin/users/${testPersonas.fnResearcher.id}/suspend`,
        address: '127.0.0.1',
      },
    });
    const added = (await records()).slice(before);
    expect(added.map((r) => r.data.action)).toEqual(['admin.auth-failed']);
    const client = await harness.signIn(testPersonas.fnResearcher);
    expect((await client.request('GET', '/v1/models')).status).toBe(200);
  });

  it('admin explain, with the actor and what each device gets', async () => {
    const client = await harness.signIn(testPersonas.fnResearcher);
    const response = await admin(
      `/v1/admin/explain?user=${testPersonas.fnResearcher.id}&model=mythos-5&actor=${encodeURIComponent('Dana (IT)')}`,
      { method: 'GET' },
    );
    expect(response.status).toBe(200);
    const body = (await response.json()) as { decisionId: string };
    const record = await harness.gateway.audit.get(body.decisionId);
    expect(record).toMatchObject({
      kind: 'admin',
      subject: testPersonas.fnResearcher.id,
      data: { action: 'explain', actor: 'Dana (IT)', credential: 'admin-token', model: 'mythos-5' },
    });
    expect(record?.data.decision).toMatchObject({ effect: 'deny' });
    expect(record?.data.devices).toContainEqual(expect.objectContaining({ jkt: client.device.jkt, effect: 'deny' }));
  });

  it('a revocation with its actor, and the refused session of the revoked device', async () => {
    const client = await harness.signIn(testPersonas.pending);
    const revoke = await admin('/v1/admin/revoke', {
      body: { user: testPersonas.pending.id, jkt: client.device.jkt, actor: 'Sam (security)' },
    });
    expect(revoke.status).toBe(200);
    expect(await revoke.json()).toEqual({ revoked: [client.device.jkt] });
    const revocation = (await records()).findLast((r) => r.kind === 'revocation');
    expect(revocation).toMatchObject({
      subject: testPersonas.pending.id,
      data: { jkt: client.device.jkt, actor: 'Sam (security)', via: 'POST /v1/admin/revoke' },
    });

    const idpToken = await harness.idp.mint(testPersonas.pending);
    const refused = await client.requestSession(idpToken, await client.challenge(idpToken));
    expect(refused.status).toBe(403);
    const record = await recordOf(refused);
    expect(record).toMatchObject({
      kind: 'session',
      subject: testPersonas.pending.id,
      data: { effect: 'deny', reason: 'DEVICE_REVOKED', jkt: client.device.jkt },
    });
    expect(typeof record.data.requestId).toBe('string');
    expect((await harness.gateway.devices.find(testPersonas.pending.id, client.device.jkt))?.revokedAt).toBeTruthy();
  });

  it('a suspension and a resumption with their actor, and the refused session of the suspended user', async () => {
    const client = await harness.signIn(testPersonas.usResearcher);
    const idpToken = await harness.idp.mint(testPersonas.usResearcher);
    const nonce = await client.challenge(idpToken);
    const suspend = await admin(`/v1/admin/users/${testPersonas.usResearcher.id}/suspend`, {
      body: { reason: 'investigation', actor: 'Dana (IT)' },
    });
    expect(suspend.status).toBe(200);
    const refused = await client.requestSession(idpToken, nonce);
    expect(refused.status).toBe(403);
    expect(await recordOf(refused)).toMatchObject({
      kind: 'access',
      subject: testPersonas.usResearcher.id,
      data: { effect: 'deny', reason: 'ACCOUNT_SUSPENDED', endpoint: 'POST /v1/session' },
    });
    const resume = await admin(`/v1/admin/users/${testPersonas.usResearcher.id}/resume`, {
      body: { actor: 'Dana (IT)' },
    });
    expect(resume.status).toBe(200);
    const acts = (await records()).filter((r) => r.subject === testPersonas.usResearcher.id && r.kind === 'admin');
    expect(acts.map((r) => [r.data.action, r.data.actor, r.data.credential])).toEqual([
      ['users.suspend', 'Dana (IT)', 'admin-token'],
      ['users.resume', 'Dana (IT)', 'admin-token'],
    ]);
  });

  it('a refused session with an invalid posture report', async () => {
    const client = await harness.signIn(testPersonas.usResearcher);
    const idpToken = await harness.idp.mint(testPersonas.usResearcher);
    const response = await client.requestSession(idpToken, 'a-nonce-never-issued');
    expect(response.status).toBe(400);
    expect(await recordOf(response)).toMatchObject({
      kind: 'session',
      data: { effect: 'deny', status: 400, code: 'invalid_posture', endpoint: 'POST /v1/session' },
    });
  });

  it('keeps the chain intact across all of these', async () => {
    expect(await harness.gateway.audit.verifyChain()).toMatchObject({ ok: true });
  });
});
