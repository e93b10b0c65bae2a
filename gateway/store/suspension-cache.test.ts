import { describe, expect, it } from 'vitest';
import { CachedUserSuspensions } from './suspension-cache';
import { InMemoryUserSuspensions, type UserSuspension } from './user-suspensions';

/** The in-memory store, counting lookups and able to hold one back. */
class CountingSuspensions extends InMemoryUserSuspensions {
  lookups = 0;
  hold: Promise<void> | undefined;

  override async find(userId: string): Promise<UserSuspension | undefined> {
    this.lookups++;
    const found = await super.find(userId);
    if (this.hold) await this.hold;
    return found;
  }
}

describe('CachedUserSuspensions', () => {
  it('answers repeated lookups from memory until the time limit', async () => {
    let now = 1_000;
    const inner = new CountingSuspensions();
    const cache = new CachedUserSuspensions(inner, 5000, 100, () => now);
    expect(await cache.find('ada')).toBeUndefined();
    expect(await cache.find('ada')).toBeUndefined();
    expect(inner.lookups).toBe(1);
    // Another instance suspends directly in the shared store; only the time limit notices it.
    await inner.suspend('ada', 'admin-token');
    expect(await cache.find('ada')).toBeUndefined();
    now += 5001;
    expect((await cache.find('ada'))?.suspendedBy).toBe('admin-token');
    expect(inner.lookups).toBe(2);
  });

  it('drops a user at once on a suspension or resumption made through it, or on forget', async () => {
    const inner = new CountingSuspensions();
    const cache = new CachedUserSuspensions(inner);
    expect(await cache.find('ada')).toBeUndefined();
    expect(await cache.suspend('ada', 'admin-token', 'left the lab')).toBe(true);
    expect((await cache.find('ada'))?.reason).toBe('left the lab');
    expect(await cache.resume('ada')).toBe(true);
    expect(await cache.find('ada')).toBeUndefined();
    // A change made elsewhere, announced over the fan-out.
    await inner.suspend('ada', 'other-instance');
    cache.forget('ada');
    expect((await cache.find('ada'))?.suspendedBy).toBe('other-instance');
    expect(cache.size).toBe(1);
  });

  it('does not keep a lookup that started before a forget', async () => {
    const inner = new CountingSuspensions();
    const cache = new CachedUserSuspensions(inner);
    let release!: () => void;
    inner.hold = new Promise((resolve) => (release = resolve));
    const stale = cache.find('ada');
    await Promise.resolve();
    await inner.suspend('ada', 'admin-token');
    cache.forget('ada');
    release();
    expect(await stale).toBeUndefined();
    inner.hold = undefined;
    expect((await cache.find('ada'))?.suspendedBy).toBe('admin-token');
  });
});
