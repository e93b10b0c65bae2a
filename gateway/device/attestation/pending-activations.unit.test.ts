import { describe, expect, it } from 'vitest';
import { InMemoryPendingActivations, type PendingActivation } from './pending-activations';

/**
 * One instance's pending activations, driven directly: the clock is the `now` each call is given,
 * so expiry is decided at exact seconds without waiting.
 */
const NOW = 1_800_000_000;
let counter = 0;

function activation(userId: string, expiresAt = NOW + 120): PendingActivation {
  counter += 1;
  return {
    userId,
    secret: `secret-${counter}`,
    attestationKeyPublic: `ak-${counter}`,
    ekFingerprint: `ek-${counter}`,
    ekSubject: 'CN=EK',
    ekIssuer: 'CN=Maker',
    expiresAt,
  };
}

const at = (now: number, perUser = 2) => ({ perUser, now });

describe('InMemoryPendingActivations: single use and per-person binding', () => {
  it('gives an activation back once, and only to the person it was held for', async () => {
    const store = new InMemoryPendingActivations();
    const held = activation('alice');
    expect(await store.hold('n1', held, at(NOW))).toEqual({ held: true });
    // Another person asking for the same nonce gets nothing, and does not burn it.
    expect(await store.take('bob', 'n1')).toBeUndefined();
    expect(await store.take('alice', 'n2')).toBeUndefined();
    expect(await store.take('alice', 'n1')).toBe(held);
    expect(await store.take('alice', 'n1')).toBeUndefined();
  });

  it('keeps two people with the same nonce apart', async () => {
    const store = new InMemoryPendingActivations();
    const alices = activation('alice');
    const bobs = activation('bob');
    await store.hold('same', alices, at(NOW));
    await store.hold('same', bobs, at(NOW));
    expect(await store.take('bob', 'same')).toBe(bobs);
    expect(await store.take('alice', 'same')).toBe(alices);
  });

  it("taking one of a person's activations leaves their others in place", async () => {
    const store = new InMemoryPendingActivations();
    const first = activation('alice');
    const second = activation('alice');
    await store.hold('n1', first, at(NOW));
    await store.hold('n2', second, at(NOW));
    expect(await store.take('alice', 'n1')).toBe(first);
    expect(await store.take('alice', 'n2')).toBe(second);
  });

  it('takes an activation whose lifetime has passed (the caller checks the expiry)', async () => {
    const store = new InMemoryPendingActivations();
    const held = activation('alice', NOW + 10);
    await store.hold('n1', held, at(NOW));
    expect(await store.take('alice', 'n1')).toBe(held);
  });

  it('replaces the activation of a nonce already held, without counting it twice', async () => {
    const store = new InMemoryPendingActivations(2);
    await store.hold('n1', activation('alice'), at(NOW));
    await store.hold('n2', activation('alice'), at(NOW));
    const newer = activation('alice');
    // At the person's limit and at the store's limit, a replacement is still no new entry.
    expect(await store.hold('n2', newer, at(NOW))).toEqual({ held: true });
    expect(await store.take('alice', 'n2')).toBe(newer);
    // One place is free again, and only one.
    expect(await store.hold('n3', activation('bob'), at(NOW, 5))).toEqual({ held: true });
    expect(await store.hold('n4', activation('carol'), at(NOW, 5))).toEqual({ held: false, reason: 'full' });
  });
});

describe('InMemoryPendingActivations: the per-person limit', () => {
  it('refuses a person at their limit, naming how many are in progress and when the oldest ends', async () => {
    const store = new InMemoryPendingActivations();
    await store.hold('n1', activation('alice', NOW + 90), at(NOW));
    await store.hold('n2', activation('alice', NOW + 30), at(NOW));
    await store.hold('n3', activation('alice', NOW + 60), at(NOW, 3));
    const refused = await store.hold('n4', activation('alice'), at(NOW, 3));
    expect(refused).toEqual({ held: false, reason: 'user', inProgress: 3, retryAfterSeconds: 30 });
    // Someone else is not affected.
    expect(await store.hold('n4', activation('bob'), at(NOW, 3))).toEqual({ held: true });
    // Nothing was held for the refused request.
    expect(await store.take('alice', 'n4')).toBeUndefined();
  });

  it('admits a person below their limit', async () => {
    const store = new InMemoryPendingActivations();
    expect(await store.hold('n1', activation('alice'), at(NOW, 2))).toEqual({ held: true });
    expect(await store.hold('n2', activation('alice'), at(NOW, 2))).toEqual({ held: true });
    expect(await store.hold('n3', activation('alice'), at(NOW, 2))).toMatchObject({ held: false, reason: 'user' });
  });

  it('refuses every hold when the limit is 0', async () => {
    const store = new InMemoryPendingActivations();
    expect(await store.hold('n1', activation('alice'), at(NOW, 0))).toMatchObject({
      held: false,
      reason: 'user',
      inProgress: 0,
    });
  });

  it('rounds the wait up to whole seconds, and never answers less than 1', async () => {
    const store = new InMemoryPendingActivations();
    await store.hold('n1', activation('alice', NOW + 30), at(NOW, 1));
    expect(await store.hold('n2', activation('alice'), at(NOW + 0.5, 1))).toEqual({
      held: false,
      reason: 'user',
      inProgress: 1,
      retryAfterSeconds: 30,
    });
    expect(await store.hold('n2', activation('alice'), at(NOW + 29.9, 1))).toMatchObject({ retryAfterSeconds: 1 });
    // Expiring this very second: still held (only entries past their expiry are swept), retry in 1 s.
    expect(await store.hold('n2', activation('alice'), at(NOW + 30, 1))).toEqual({
      held: false,
      reason: 'user',
      inProgress: 1,
      retryAfterSeconds: 1,
    });
  });

  it('no longer counts an activation once its expiry has passed', async () => {
    const store = new InMemoryPendingActivations();
    const old = activation('alice', NOW + 10);
    await store.hold('n1', old, at(NOW, 1));
    expect(await store.hold('n2', activation('alice'), at(NOW + 10, 1))).toMatchObject({ held: false });
    const fresh = activation('alice', NOW + 200);
    expect(await store.hold('n2', fresh, at(NOW + 11, 1))).toEqual({ held: true });
    // The expired one was dropped, the new one kept.
    expect(await store.take('alice', 'n1')).toBeUndefined();
    expect(await store.take('alice', 'n2')).toBe(fresh);
  });

  it('sweeps only what has expired, for every person', async () => {
    const store = new InMemoryPendingActivations();
    const alivesLive = activation('alice', NOW + 100);
    await store.hold('a1', activation('alice', NOW + 10), at(NOW));
    await store.hold('a2', alivesLive, at(NOW));
    const bobsLive = activation('bob', NOW + 100);
    await store.hold('b1', bobsLive, at(NOW));
    await store.hold('c1', activation('carol', NOW + 10), at(NOW));
    // A hold by someone else sweeps.
    await store.hold('d1', activation('dave'), at(NOW + 50));
    expect(await store.take('alice', 'a1')).toBeUndefined();
    expect(await store.take('carol', 'c1')).toBeUndefined();
    expect(await store.take('alice', 'a2')).toBe(alivesLive);
    expect(await store.take('bob', 'b1')).toBe(bobsLive);
  });
});

describe('InMemoryPendingActivations: the store limit', () => {
  it('refuses everyone once the store is full, and admits again when one is taken', async () => {
    const store = new InMemoryPendingActivations(2);
    expect(await store.hold('n1', activation('alice'), at(NOW, 5))).toEqual({ held: true });
    expect(await store.hold('n2', activation('bob'), at(NOW, 5))).toEqual({ held: true });
    expect(await store.hold('n3', activation('carol'), at(NOW, 5))).toEqual({ held: false, reason: 'full' });
    expect(await store.take('carol', 'n3')).toBeUndefined();
    await store.take('alice', 'n1');
    expect(await store.hold('n3', activation('carol'), at(NOW, 5))).toEqual({ held: true });
    expect(await store.hold('n4', activation('dave'), at(NOW, 5))).toEqual({ held: false, reason: 'full' });
  });

  it('frees the places of swept activations', async () => {
    const store = new InMemoryPendingActivations(2);
    await store.hold('n1', activation('alice', NOW + 10), at(NOW, 5));
    await store.hold('n2', activation('bob', NOW + 10), at(NOW, 5));
    expect(await store.hold('n3', activation('carol'), at(NOW + 11, 5))).toEqual({ held: true });
    expect(await store.hold('n4', activation('dave'), at(NOW + 11, 5))).toEqual({ held: true });
    expect(await store.hold('n5', activation('erin'), at(NOW + 11, 5))).toEqual({ held: false, reason: 'full' });
  });

  it('a take that finds nothing frees no place', async () => {
    const store = new InMemoryPendingActivations(1);
    await store.hold('n1', activation('alice'), at(NOW, 5));
    expect(await store.take('alice', 'other')).toBeUndefined();
    expect(await store.take('bob', 'n1')).toBeUndefined();
    expect(await store.hold('n2', activation('bob'), at(NOW, 5))).toEqual({ held: false, reason: 'full' });
  });
});
