import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProblemDetails } from '../shared/problem';
import { TestCluster, type ClusterInstance } from './testing/cluster';
import { SseReader, TestDevice } from './testing/device-client';
import { testPersonas, type TestIdentityProvider, type TestPersona } from './testing/identity-provider';

/**
 * Two gateway instances on one PostgreSQL and one Redis (real servers from Debian's packages,
 * started on free loopback ports), behind one public URL as a load balancer would present them.
 */
type Instance = ClusterInstance;

let cluster: TestCluster;
let idp: TestIdentityProvider;
let policiesDir: string;
let publicUrl: string;
const a = () => cluster.instances[0]!;
const b = () => cluster.instances[1]!;

beforeAll(async () => {
  cluster = await TestCluster.start(2, { demoTokensPerSecond: 20 });
  ({ idp, policiesDir, publicUrl } = cluster);
}, 120_000);

afterAll(async () => {
  await cluster?.close();
});

/** A desktop client whose requests can go to either instance (the proof names the public URL). */
class Client {
  token = '';
  constructor(readonly device: TestDevice) {}

  static async create(): Promise<Client> {
    return new Client(await TestDevice.create());
  }

  async challenge(at: Instance, idpToken: string): Promise<string> {
    const response = await fetch(`${at.address}/v1/device/challenge`, {
      method: 'POST',
      headers: { authorization: `Bearer ${idpToken}` },
    });
    expect(response.status).toBe(200);
    return ((await response.json()) as { nonce: string }).nonce;
  }

  async session(at: Instance, idpToken: string, nonce: string): Promise<Response> {
    return fetch(`${at.address}/v1/session`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${idpToken}`,
        dpop: await this.device.proof('POST', `${publicUrl}/v1/session`),
        'content-type': 'application/json',
      },
      body: JSON.stringify({ posture: await this.device.posture(nonce) }),
    });
  }

  async signIn(
    challengeAt: Instance,
    sessionAt: Instance,
    persona: TestPersona = testPersonas.usResearcher,
  ): Promise<void> {
    const idpToken = await idp.mint(persona);
    const response = await this.session(sessionAt, idpToken, await this.challenge(challengeAt, idpToken));
    expect(response.status).toBe(200);
    this.token = ((await response.json()) as { access_token: string }).access_token;
  }

  proof(method: string, path: string): Promise<string> {
    return this.device.proof(method, `${publicUrl}${path}`, { accessToken: this.token });
  }

  async send(at: Instance, method: string, path: string, options: { proof?: string; body?: unknown } = {}) {
    return fetch(`${at.address}${path}`, {
      method,
      headers: {
        authorization: `DPoP ${this.token}`,
        dpop: options.proof ?? (await this.proof(method, path)),
        ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
    });
  }
}

async function admin(at: Instance, path: string, body: unknown): Promise<Response> {
  return fetch(`${at.address}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${at.gateway.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

describe('two gateway instances on one PostgreSQL and Redis', () => {
  it('redeems at B the device challenge A issued, once', async () => {
    const client = await Client.create();
    const idpToken = await idp.mint(testPersonas.fnResearcher);
    const nonce = await client.challenge(a(), idpToken);
    expect((await client.session(b(), idpToken, nonce)).status).toBe(200);
    const again = await client.session(a(), idpToken, nonce);
    expect(again.status).toBe(400);
    expect(ProblemDetails.parse(await again.json()).detail).toMatch(/nonce is unknown, already used/);
  });

  it('refuses at B a DPoP proof already used at A', async () => {
    const client = await Client.create();
    await client.signIn(a(), a());
    const proof = await client.proof('GET', '/v1/models');
    expect((await client.send(a(), 'GET', '/v1/models', { proof })).status).toBe(200);
    const replayed = await client.send(b(), 'GET', '/v1/models', { proof });
    expect(replayed.status).toBe(401);
    expect(ProblemDetails.parse(await replayed.json()).detail).toMatch(/jti replay/);
    // A fresh proof is fine at B: the token and the enrolment are shared.
    expect((await client.send(b(), 'GET', '/v1/models')).status).toBe(200);
  });

  it('cuts, within a second, the streams B serves when A revokes the device', async () => {
    const client = await Client.create();
    await client.signIn(a(), b(), testPersonas.pending);
    const events = new SseReader(await client.send(b(), 'GET', '/v1/events'));
    expect((await events.next())?.event).toBe('entitlements.changed');
    const completion = await client.send(b(), 'POST', '/v1/chat/completions', {
      body: { model: 'haiku-4', stream: true, messages: [{ role: 'user', content: 'write a long answer' }] },
    });
    expect(completion.status).toBe(200);
    const stream = new SseReader(completion);
    expect((await stream.next())?.data).toContain('"role":"assistant"');
    const revoked = await admin(a(), '/v1/admin/revoke', { user: 'pending', jkt: client.device.jkt });
    expect(await revoked.json()).toEqual({ revoked: [client.device.jkt] });
    expect((await events.next(1000))?.event).toBe('session.revoked');
    let cut: string | undefined;
    for (;;) {
      const event = await stream.next(1000);
      if (!event) break;
      if (event.event === 'error') {
        cut = event.data;
        break;
      }
    }
    expect(cut).toMatch(/revoked/);
    const after = await client.send(b(), 'GET', '/v1/models');
    expect(after.status).toBe(401);
    expect(ProblemDetails.parse(await after.json()).detail).toMatch(/revoked/);
  });

  it('cuts, within a second, the streams B serves when A suspends the account', async () => {
    const client = await Client.create();
    const persona: TestPersona = { ...testPersonas.fnResearcher, id: 'to-suspend', username: 'ts@clearance.example' };
    await client.signIn(b(), b(), persona);
    const events = new SseReader(await client.send(b(), 'GET', '/v1/events'));
    expect((await events.next())?.event).toBe('entitlements.changed');
    for (let call = 0; call < 2; call++) expect((await client.send(b(), 'GET', '/v1/models')).status).toBe(200);
    const suspended = await admin(a(), '/v1/admin/users/to-suspend/suspend', { reason: 'cluster test' });
    expect(suspended.status).toBe(200);
    const ended = await events.next(1000);
    expect(ended?.event).toBe('session.revoked');
    expect(ended?.data).toContain('account_suspended');
    const after = await client.send(b(), 'GET', '/v1/models');
    expect(after.status).toBe(403);
    expect(ProblemDetails.parse(await after.json()).reason).toBe('ACCOUNT_SUSPENDED');
    // B now holds "suspended" in its lookup cache; a resumption at A clears it there too.
    expect((await client.send(b(), 'GET', '/v1/models')).status).toBe(403);
    expect((await admin(a(), '/v1/admin/users/to-suspend/resume', {})).status).toBe(200);
    await expect.poll(async () => (await client.send(b(), 'GET', '/v1/models')).status, { timeout: 1000 }).toBe(200);
  });

  it('tells subscribers on both instances about a policy change made at one', async () => {
    const atA = await Client.create();
    const atB = await Client.create();
    await atA.signIn(a(), a(), testPersonas.contractor);
    await atB.signIn(b(), b(), { ...testPersonas.contractor, id: 'contractor-2', username: 'c2@contractor.example' });
    const streamA = new SseReader(await atA.send(a(), 'GET', '/v1/events'));
    const streamB = new SseReader(await atB.send(b(), 'GET', '/v1/events'));
    const first = [await streamA.next(), await streamB.next()].map((e) => JSON.parse(e!.data) as { ver: number });
    writeFileSync(
      join(policiesDir, 'zz-cluster.cedar'),
      `@id("cluster-haiku-off")
@reason("MODEL_SUSPENDED")
@title("Model suspended")
@message("{model} is suspended.")
forbid (principal, action == Clearance::Action::"invoke", resource == Clearance::Model::"haiku-4");
`,
    );
    expect(await a().gateway.reloadPolicies()).toMatchObject({ ok: true });
    const [changedA, changedB] = await Promise.all([streamA.next(3000), streamB.next(3000)]);
    expect(changedA?.event).toBe('entitlements.changed');
    expect(changedB?.event).toBe('entitlements.changed');
    expect((JSON.parse(changedA!.data) as { ver: number }).ver).toBeGreaterThan(first[0]!.ver);
    expect((JSON.parse(changedB!.data) as { ver: number }).ver).toBeGreaterThan(first[1]!.ver);
    expect(b().gateway.policy.digest).toBe(a().gateway.policy.digest);
    const refused = await atB.send(b(), 'POST', '/v1/chat/completions', {
      body: { model: 'haiku-4', messages: [{ role: 'user', content: 'hi' }] },
    });
    expect(refused.status).toBe(403);
    expect(ProblemDetails.parse(await refused.json()).reason).toBe('MODEL_SUSPENDED');
  });

  it('writes one audit chain from both instances that verifies', async () => {
    const client = await Client.create();
    await client.signIn(a(), b(), testPersonas.usResearcher);
    const before = await a().gateway.audit.verifyChain();
    const calls = Array.from({ length: 40 }, (_, index) =>
      client.send(index % 2 === 0 ? a() : b(), 'POST', '/v1/chat/completions', {
        body: { model: 'mythos-5', messages: [{ role: 'user', content: `call ${index}` }] },
      }),
    );
    const statuses = await Promise.all(calls.map(async (call) => (await call).status));
    expect(statuses.every((status) => status === 200)).toBe(true);
    const after = await b().gateway.audit.verifyChain();
    expect(after.ok).toBe(true);
    expect(after.count).toBeGreaterThanOrEqual(before.count + 40);
    const decisions = await a().gateway.audit.list({ afterSeq: before.count, limit: 1000 });
    expect(decisions.filter((record) => record.kind === 'access')).toHaveLength(40);
  });
});
