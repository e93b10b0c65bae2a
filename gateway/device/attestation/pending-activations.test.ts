import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisPendingActivations } from '../../store/redis';
import { startTestRedis, type TestService } from '../../testing/services';
import { InMemoryPendingActivations, type PendingActivation, type PendingActivationStore } from './pending-activations';

/** The same contract for one instance's memory and for Redis (a real server on a free loopback port). */
let redisServer: TestService;
let redis: Redis;
beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
}, 60_000);
afterAll(async () => {
  redis?.disconnect();
  await redisServer?.stop();
});

const NOW = 1_800_000_000;
let counter = 0;

function activation(userId: string, expiresAt = NOW + 120): PendingActivation {
  counter += 1;
  return {
    userId,
    secret: `secret-${counter}`,
    attestationKeyPublic: `ak-${counter}`,
    ekFingerprint: 'ek',
    ekSubject: 'CN=EK',
    ekIssuer: 'CN=Maker',
    expiresAt,
  };
}

const stores: [string, () => PendingActivationStore][] = [
  ['memory', () => new InMemoryPendingActivations(100)],
  ['redis', () => new RedisPendingActivations(redis)],
];

describe.each(stores)('pending activations in %s', (_name, make) => {
  const limits = { perUser: 2, now: NOW };
  const user = () => `user-${Math.random().toString(36).slice(2)}`;

  it('gives an activation back once, to its own person only', async () => {
    const store = make();
    const alice = user();
    const held = activation(alice);
    expect(await store.hold('n1', held, limits)).toEqual({ held: true });
    expect(await store.take(user(), 'n1')).toBeUndefined();
    expect(await store.take(alice, 'n1')).toEqual(held);
    expect(await store.take(alice, 'n1')).toBeUndefined();
  });

  it('refuses a person past their share, naming when the oldest ends, and not anyone else', async () => {
    const store = make();
    const alice = user();
    await store.hold('n1', activation(alice, NOW + 30), limits);
    await store.hold('n2', activation(alice, NOW + 90), limits);
    expect(await store.hold('n3', activation(alice), limits)).toEqual({
      held: false,
      reason: 'user',
      inProgress: 2,
      retryAfterSeconds: 30,
    });
    expect(await store.hold('n3', activation(user()), limits)).toEqual({ held: true });
    // Taking one frees a place.
    await store.take(alice, 'n1');
    expect(await store.hold('n3', activation(alice), limits)).toEqual({ held: true });
  });

  it('replacing the activation of the same nonce is not a new one', async () => {
    const store = make();
    const alice = user();
    await store.hold('n1', activation(alice), limits);
    await store.hold('n2', activation(alice), limits);
    const newer = activation(alice);
    expect(await store.hold('n2', newer, limits)).toEqual({ held: true });
    expect(await store.take(alice, 'n2')).toEqual(newer);
  });

  it('expired activations no longer count against the share', async () => {
    const store = make();
    const alice = user();
    await store.hold('n1', activation(alice, NOW + 10), limits);
    await store.hold('n2', activation(alice, NOW + 10), limits);
    expect(await store.hold('n3', activation(alice, NOW + 140), { ...limits, now: NOW + 20 })).toEqual({ held: true });
  });
});

describe('pending activations in memory', () => {
  it('refuses everyone once the whole store is full', async () => {
    const store = new InMemoryPendingActivations(3);
    for (const [i, who] of ['a', 'b', 'c'].entries()) {
      expect(await store.hold(`n${i}`, activation(who), { perUser: 10, now: NOW })).toEqual({ held: true });
    }
    expect(await store.hold('n9', activation('d'), { perUser: 10, now: NOW })).toEqual({ held: false, reason: 'full' });
    await store.take('a', 'n0');
    expect(await store.hold('n9', activation('d'), { perUser: 10, now: NOW })).toEqual({ held: true });
  });
});
