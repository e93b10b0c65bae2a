import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProblemDetails } from '../../shared/problem';
import { problemType } from '../../shared/protocol';
import { InMemoryDpopReplayCache } from '../auth/dpop';
import { InMemoryChallengeStore } from '../device/challenges';
import { startGatewayHarness, type GatewayHarness } from '../testing/gateway-harness';
import { testPersonas } from '../testing/identity-provider';
import { TestDevice } from '../testing/device-client';

async function expectTooMany(response: Response): Promise<void> {
  expect(response.status).toBe(429);
  expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
  expect(ProblemDetails.parse(await response.json()).type).toBe(problemType('too-many-requests'));
}

describe('a flood by one user', () => {
  let harness: GatewayHarness;
  beforeAll(async () => {
    harness = await startGatewayHarness();
  });
  afterAll(async () => {
    await harness?.close();
  });

  it('of device challenges is refused for that user alone; another user still signs in', async () => {
    const token = await harness.idp.mint(testPersonas.contractor);
    const flood = await Promise.all(
      Array.from({ length: 150 }, () =>
        fetch(`${harness.gateway.url}/v1/device/challenge`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}` },
        }),
      ),
    );
    const statuses = flood.map((response) => response.status);
    expect(statuses.filter((status) => status === 200)).toHaveLength(10);
    expect(statuses.filter((status) => status === 429)).toHaveLength(140);
    await expectTooMany(flood.find((response) => response.status === 429)!);
    await Promise.all(flood.filter((response) => !response.bodyUsed).map((response) => response.body?.cancel()));

    const other = await harness.signIn(testPersonas.fnResearcher);
    expect(other.accessToken).toBeTruthy();
    await expect(harness.signIn(testPersonas.contractor)).rejects.toThrow(/challenge failed: 429/);
  });
});

describe('request rates per principal', () => {
  it('refuses a flooding device key with 429 while the same user on another device goes on', async () => {
    const harness = await startGatewayHarness({ limits: { perDevice: { max: 5, windowMs: 60_000 } } });
    try {
      const noisy = await harness.signIn(testPersonas.usResearcher);
      const quiet = await harness.signIn(testPersonas.usResearcher, await TestDevice.create());
      const statuses: number[] = [];
      for (let n = 0; n < 6; n++) {
        const response = await noisy.request('GET', '/v1/models');
        statuses.push(response.status);
        if (response.status === 429) await expectTooMany(response);
        else await response.body?.cancel();
      }
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
      expect((await quiet.request('GET', '/v1/models')).status).toBe(200);
    } finally {
      await harness.close();
    }
  });

  it('refuses a flooding user with 429 while another user goes on', async () => {
    const harness = await startGatewayHarness({ limits: { perUser: { max: 6, windowMs: 60_000 } } });
    try {
      // Sign-in takes two of the six (challenge and session).
      const noisy = await harness.signIn(testPersonas.contractor);
      const other = await harness.signIn(testPersonas.fnResearcher);
      const statuses: number[] = [];
      for (let n = 0; n < 5; n++) {
        const response = await noisy.request('GET', '/v1/entitlements');
        statuses.push(response.status);
        await response.body?.cancel();
      }
      expect(statuses).toEqual([200, 200, 200, 200, 429]);
      expect((await other.request('GET', '/v1/entitlements')).status).toBe(200);
    } finally {
      await harness.close();
    }
  });

  it('limits a client address before authentication, but never the health probe', async () => {
    const harness = await startGatewayHarness({ limits: { perAddress: { max: 10, windowMs: 60_000 } } });
    try {
      const statuses: number[] = [];
      for (let n = 0; n < 11; n++) {
        const response = await fetch(`${harness.gateway.url}/v1/models`);
        statuses.push(response.status);
        if (response.status === 429) await expectTooMany(response);
        else await response.body?.cancel();
      }
      expect(statuses.slice(0, 10).every((status) => status === 401)).toBe(true);
      expect(statuses[10]).toBe(429);
      expect((await fetch(`${harness.gateway.url}/healthz`)).status).toBe(200);
    } finally {
      await harness.close();
    }
  });
});

describe('request bodies', () => {
  let harness: GatewayHarness;
  beforeAll(async () => {
    harness = await startGatewayHarness();
  });
  afterAll(async () => {
    await harness?.close();
  });
  const big = (bytes: number) =>
    JSON.stringify({ model: 'haiku-4', messages: [{ role: 'user', content: 'x'.repeat(bytes) }] });

  it('authenticates a chat request before reading its body', async () => {
    const response = await fetch(`${harness.gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: big(900 * 1024),
    });
    expect(response.status).toBe(401);
  });

  it('refuses a body over the small limit on the other routes with 413', async () => {
    const response = await fetch(`${harness.gateway.url}/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer x' },
      body: JSON.stringify({ posture: 'x'.repeat(100 * 1024) }),
    });
    expect(response.status).toBe(413);
    expect(ProblemDetails.parse(await response.json()).type).toBe(problemType('payload-too-large'));
  });

  it('accepts an authenticated chat body up to the completion limit and refuses a larger one', async () => {
    const client = await harness.signIn(testPersonas.usResearcher);
    const url = `${harness.gateway.url}/v1/chat/completions`;
    const send = async (body: string) =>
      fetch(url, {
        method: 'POST',
        headers: {
          authorization: `DPoP ${client.accessToken!}`,
          dpop: await client.device.proof('POST', url, { accessToken: client.accessToken! }),
          'content-type': 'application/json',
        },
        body,
      });
    const fits = await send(JSON.stringify({ ...JSON.parse(big(200 * 1024)), max_tokens: 2 }));
    expect(fits.status).toBe(200);
    const tooLarge = await send(big(2 * 1024 * 1024));
    expect(tooLarge.status).toBe(413);
  });
});

describe('in-memory quota stores', () => {
  it('bounds outstanding challenges per user, not for everyone', async () => {
    const store = new InMemoryChallengeStore({ perUser: 2 });
    await store.issue('a');
    await store.issue('a');
    await expect(store.issue('a')).rejects.toMatchObject({ name: 'QuotaExceeded', scope: 'user' });
    await expect(store.issue('b')).resolves.toMatchObject({ nonce: expect.any(String) });
    expect(await store.outstanding('a')).toBe(2);
  });

  it('frees a user slot when a challenge is used', async () => {
    const store = new InMemoryChallengeStore({ perUser: 1 });
    const { nonce } = await store.issue('a');
    expect(await store.consume(nonce, 'a')).toBe(true);
    expect(await store.consume(nonce, 'a')).toBe(false);
    await expect(store.issue('a')).resolves.toBeDefined();
  });

  it('bounds DPoP proof ids per device key, and forgets them when they age out', async () => {
    const cache = new InMemoryDpopReplayCache(100, 2);
    expect(await cache.remember('k1', 'j1', 100, 10)).toBe('fresh');
    expect(await cache.remember('k1', 'j1', 100, 10)).toBe('replay');
    expect(await cache.remember('k1', 'j2', 100, 10)).toBe('fresh');
    expect(await cache.remember('k1', 'j3', 100, 10)).toBe('key-full');
    expect(await cache.remember('k2', 'j3', 100, 10)).toBe('fresh');
    expect(await cache.remember('k1', 'j3', 200, 101)).toBe('fresh');
  });
});
