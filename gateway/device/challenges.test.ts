import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProblemDetails } from '../../shared/problem';
import { PROBLEM_TYPE_BASE } from '../http/problems';
import { startGatewayHarness, type GatewayHarness } from '../testing/gateway-harness';
import { testPersonas } from '../testing/identity-provider';
import { TestDevice } from '../testing/device-client';
import { QuotaExceeded } from '../limits/quotas';
import { InMemoryChallengeStore } from './challenges';

describe('InMemoryChallengeStore', () => {
  it('issues a 256-bit nonce that expires after the lifetime', async () => {
    const store = new InMemoryChallengeStore({ lifetimeSeconds: 120, clock: () => 1000.7 });
    const challenge = await store.issue('alice');
    expect(Buffer.from(challenge.nonce, 'base64url')).toHaveLength(32);
    expect(challenge.expiresAt).toBe(1120);
    expect((await store.issue('alice')).nonce).not.toBe(challenge.nonce);
  });

  it('lets the user it was issued to redeem it once', async () => {
    const store = new InMemoryChallengeStore();
    const { nonce } = await store.issue('alice');
    expect(await store.consume(nonce, 'alice')).toBe(true);
    expect(await store.consume(nonce, 'alice')).toBe(false);
  });

  it('refuses a challenge redeemed by another user, and burns it', async () => {
    const store = new InMemoryChallengeStore();
    const { nonce } = await store.issue('alice');
    expect(await store.consume(nonce, 'mallory')).toBe(false);
    // The attempt used it up: the rightful user must ask again (no oracle for guessing).
    expect(await store.consume(nonce, 'alice')).toBe(false);
  });

  it('refuses an unknown nonce', async () => {
    expect(await new InMemoryChallengeStore().consume('never-issued', 'alice')).toBe(false);
  });

  it('accepts a challenge until its expiry second and refuses it after', async () => {
    let now = 1000;
    const store = new InMemoryChallengeStore({ lifetimeSeconds: 120, clock: () => now });
    const first = await store.issue('alice');
    const second = await store.issue('alice');
    now = 1120;
    expect(await store.consume(first.nonce, 'alice')).toBe(true);
    now = 1120.5;
    expect(await store.consume(second.nonce, 'alice')).toBe(false);
  });

  it('refuses to issue beyond the outstanding limit until expired ones are swept', async () => {
    let now = 1000;
    const store = new InMemoryChallengeStore({ lifetimeSeconds: 60, maxOutstanding: 2, clock: () => now });
    await store.issue('alice');
    const kept = await store.issue('bob');
    await expect(store.issue('carol')).rejects.toThrow('Too many outstanding device challenges');
    expect(await store.consume(kept.nonce, 'bob')).toBe(true);
    expect((await store.issue('carol')).nonce).toBeTruthy();
    await expect(store.issue('dave')).rejects.toThrow('Too many outstanding device challenges');
    now = 1061;
    expect((await store.issue('dave')).expiresAt).toBe(1121);
    expect((await store.issue('erin')).expiresAt).toBe(1121);
  });

  it('refuses one user beyond their own outstanding challenges, saying when the oldest expires', async () => {
    let now = 1000;
    const store = new InMemoryChallengeStore({ lifetimeSeconds: 60, perUser: 2, clock: () => now });
    await store.issue('alice');
    now = 1030.5;
    await store.issue('alice');
    now = 1040;
    const refused = await store.issue('alice').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(QuotaExceeded);
    expect(refused).toMatchObject({
      scope: 'user',
      retryAfterSeconds: 20,
      message: 'This account already holds 2 unused device challenges; use one or wait for them to expire.',
    });
    // At the oldest one's expiry second it is still live: the answer is never "retry in 0 s".
    now = 1060;
    await expect(store.issue('alice')).rejects.toMatchObject({ scope: 'user', retryAfterSeconds: 1 });
    expect(await store.outstanding('alice')).toBe(2);
    // Another user is not affected.
    expect((await store.issue('bob')).expiresAt).toBe(1120);
    now = 1060.5;
    expect((await store.issue('alice')).expiresAt).toBe(1120);
  });

  it('sweeps expired challenges at once when the store is full, even between periodic sweeps', async () => {
    let now = 1000;
    const store = new InMemoryChallengeStore({ lifetimeSeconds: 5, maxOutstanding: 2, clock: () => now });
    await store.issue('alice');
    await store.issue('bob');
    // Both expired, and the periodic sweep (every 10 s) is not due yet: only the forced one frees room.
    now = 1006;
    expect((await store.issue('carol')).expiresAt).toBe(1011);
    expect(await store.outstanding('alice')).toBe(0);
    // That sweep also scheduled the next periodic one; a store full again before it is still swept at once.
    await store.issue('dave');
    now = 1012;
    expect((await store.issue('erin')).expiresAt).toBe(1017);
    expect(await store.outstanding('carol')).toBe(0);
  });

  it('keeps unexpired challenges through a sweep', async () => {
    let now = 1000;
    const store = new InMemoryChallengeStore({ lifetimeSeconds: 60, clock: () => now });
    const { nonce } = await store.issue('alice');
    now = 1060;
    await store.issue('bob');
    expect(await store.consume(nonce, 'alice')).toBe(true);
  });
});

describe('device challenge over HTTP', () => {
  let harness: GatewayHarness;
  beforeAll(async () => {
    harness = await startGatewayHarness();
  });
  afterAll(async () => {
    await harness?.close();
  });

  async function challengeFor(idpToken: string): Promise<string> {
    const response = await fetch(`${harness.gateway.url}/v1/device/challenge`, {
      method: 'POST',
      headers: { authorization: `Bearer ${idpToken}` },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const body = (await response.json()) as { nonce: string; expires_in: number };
    expect(body.expires_in).toBeGreaterThan(0);
    return body.nonce;
  }

  async function startSession(idpToken: string, device: TestDevice, nonce: string): Promise<Response> {
    const url = `${harness.gateway.url}/v1/session`;
    return fetch(url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${idpToken}`,
        'content-type': 'application/json',
        dpop: await device.proof('POST', url),
      },
      body: JSON.stringify({ posture: await device.posture(nonce) }),
    });
  }

  it('refuses a session whose posture report signs a challenge issued to another user, and creates none', async () => {
    const aliceToken = await harness.idp.mint(testPersonas.usResearcher);
    const malloryToken = await harness.idp.mint(testPersonas.fnResearcher);
    const nonce = await challengeFor(aliceToken);
    const mallory = await TestDevice.create();
    const response = await startSession(malloryToken, mallory, nonce);
    expect(response.status).toBe(400);
    const problem = ProblemDetails.parse(await response.json());
    expect(problem.type).toBe(`${PROBLEM_TYPE_BASE}bad-request`);
    expect(problem.title).toBe('Invalid posture report');
    expect(problem.detail).toBe(
      'posture report nonce is unknown, already used, expired, or was issued to someone else',
    );
    // No session: the refused device is not enrolled for Mallory.
    expect(await harness.gateway.devices.find(testPersonas.fnResearcher.id, mallory.jkt)).toBeUndefined();
  });

  it('starts a session for the user the challenge was issued to', async () => {
    const token = await harness.idp.mint(testPersonas.usResearcher);
    const device = await TestDevice.create();
    const response = await startSession(token, device, await challengeFor(token));
    expect(response.status).toBe(200);
    expect(await harness.gateway.devices.find(testPersonas.usResearcher.id, device.jkt)).toMatchObject({
      jkt: device.jkt,
    });
  });
});
