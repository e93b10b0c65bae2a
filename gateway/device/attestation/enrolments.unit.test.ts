import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openGatewayDatabase, type GatewayDatabase } from '../../store/database';
import { SqliteEnrolmentStore, type EnrolmentFacts } from './enrolments';

/** The enrolment store in a real in-memory SQLite database, on a clock the test moves. */
let db: GatewayDatabase;
let now: Date;
let store: SqliteEnrolmentStore;

beforeEach(() => {
  db = openGatewayDatabase(':memory:');
  now = new Date('2026-12-06T08:00:00.000Z');
  store = new SqliteEnrolmentStore(db, () => now);
});
afterEach(() => {
  db.close();
});

const later = (seconds: number) => {
  now = new Date(now.getTime() + seconds * 1000);
  return now.toISOString();
};

function facts(userId: string, jkt: string, extra: Partial<EnrolmentFacts> = {}): EnrolmentFacts {
  return { userId, jkt, deviceId: `device-${jkt}`, platform: 'linux', assurance: 'software', ...extra };
}

describe('SqliteEnrolmentStore', () => {
  it('records a device seen for the first time with the initial status and both dates', async () => {
    const given = facts('alice', 'jkt-1', {
      username: 'alice@lab.example',
      assurance: 'hardware',
      ekFingerprint: 'ek-1',
      managed: 'verified',
      certificate: { subject: 'CN=laptop', serial: '01', fingerprint: 'fp', via: 'tls' },
    });
    const record = await store.upsert(given, 'pending');
    expect(record).toStrictEqual({
      ...given,
      status: 'pending',
      requestedAt: '2026-12-06T08:00:00.000Z',
      lastSeenAt: '2026-12-06T08:00:00.000Z',
    });
    expect(await store.find('alice', 'jkt-1')).toStrictEqual(record);
  });

  it('a device seen again keeps its status and request date, and takes the new facts and last-seen date', async () => {
    await store.upsert(facts('alice', 'jkt-1'), 'pending');
    const seen = later(60);
    const again = await store.upsert(facts('alice', 'jkt-1', { deviceId: 'renamed', platform: 'win32' }), 'approved');
    expect(again).toStrictEqual({
      ...facts('alice', 'jkt-1', { deviceId: 'renamed', platform: 'win32' }),
      status: 'pending',
      requestedAt: '2026-12-06T08:00:00.000Z',
      lastSeenAt: seen,
    });
  });

  it('keeps the same key of two people apart', async () => {
    await store.upsert(facts('alice', 'jkt-1'), 'approved');
    await store.upsert(facts('bob', 'jkt-1'), 'pending');
    expect((await store.find('alice', 'jkt-1'))?.status).toBe('approved');
    expect((await store.find('bob', 'jkt-1'))?.status).toBe('pending');
    expect(await store.find('carol', 'jkt-1')).toBeUndefined();
    expect(await store.find('alice', 'jkt-2')).toBeUndefined();
  });

  it('decides: sets the status, when and who, and only for that device', async () => {
    await store.upsert(facts('alice', 'jkt-1'), 'pending');
    await store.upsert(facts('alice', 'jkt-2'), 'pending');
    const decidedAt = later(30);
    const decided = await store.decide('alice', 'jkt-1', 'retired', 'it-admin');
    expect(decided).toStrictEqual({
      ...facts('alice', 'jkt-1'),
      status: 'retired',
      requestedAt: '2026-12-06T08:00:00.000Z',
      lastSeenAt: '2026-12-06T08:00:00.000Z',
      decidedAt,
      decidedBy: 'it-admin',
    });
    expect(await store.find('alice', 'jkt-1')).toStrictEqual(decided);
    expect((await store.find('alice', 'jkt-2'))?.status).toBe('pending');
    expect(await store.find('alice', 'jkt-2')).not.toHaveProperty('decidedAt');
  });

  it('never brings a retired device back: another decision changes nothing and answers it retired', async () => {
    await store.upsert(facts('alice', 'jkt-1'), 'approved');
    const retired = await store.decide('alice', 'jkt-1', 'retired', 'first-admin');
    later(30);
    expect(await store.decide('alice', 'jkt-1', 'approved', 'it-admin')).toStrictEqual(retired);
    expect(await store.decide('alice', 'jkt-1', 'pending', 'it-admin')).toStrictEqual(retired);
    expect(await store.find('alice', 'jkt-1')).toStrictEqual(retired);
    // Retiring it again records the later decision.
    const decidedAt = later(30);
    expect(await store.decide('alice', 'jkt-1', 'retired', 'second-admin')).toMatchObject({
      status: 'retired',
      decidedAt,
      decidedBy: 'second-admin',
    });
  });

  it('decides nothing for a device that never asked', async () => {
    await store.upsert(facts('alice', 'jkt-1'), 'pending');
    expect(await store.decide('alice', 'jkt-9', 'approved', 'it-admin')).toBeUndefined();
    expect(await store.decide('bob', 'jkt-1', 'approved', 'it-admin')).toBeUndefined();
    expect(await store.find('alice', 'jkt-9')).toBeUndefined();
    expect((await store.list()).map((r) => [r.userId, r.jkt, r.status])).toEqual([['alice', 'jkt-1', 'pending']]);
  });

  it('lists in request order, by status, by user id or username, or both', async () => {
    await store.upsert(facts('u-2', 'b', { username: 'bob@lab.example' }), 'pending');
    later(1);
    await store.upsert(facts('u-1', 'a', { username: 'alice@lab.example' }), 'approved');
    later(1);
    await store.upsert(facts('u-1', 'c'), 'pending');
    later(1);
    // Seen again later: its request date, and so its place, stays.
    await store.upsert(facts('u-2', 'b', { username: 'bob@lab.example' }), 'pending');
    const keys = (records: readonly { jkt: string }[]) => records.map((r) => r.jkt);
    expect(keys(await store.list())).toEqual(['b', 'a', 'c']);
    expect(keys(await store.list({}))).toEqual(['b', 'a', 'c']);
    expect(keys(await store.list({ status: undefined, userId: undefined }))).toEqual(['b', 'a', 'c']);
    expect(keys(await store.list({ status: 'pending' }))).toEqual(['b', 'c']);
    expect(keys(await store.list({ status: 'retired' }))).toEqual([]);
    expect(keys(await store.list({ userId: 'u-1' }))).toEqual(['a', 'c']);
    expect(keys(await store.list({ userId: 'bob@lab.example' }))).toEqual(['b']);
    expect(keys(await store.list({ userId: 'u-1', status: 'pending' }))).toEqual(['c']);
    expect(keys(await store.list({ userId: 'nobody' }))).toEqual([]);
  });

  it('creates its table once: a second store on the same database sees the first one’s devices', async () => {
    await store.upsert(facts('alice', 'jkt-1'), 'approved');
    const second = new SqliteEnrolmentStore(db, () => now);
    expect((await second.find('alice', 'jkt-1'))?.status).toBe('approved');
  });

  it('refuses a status outside the three it knows', async () => {
    await expect(store.upsert(facts('alice', 'jkt-1'), 'unknown' as never)).rejects.toThrow(/CHECK constraint failed/);
    expect(await store.find('alice', 'jkt-1')).toBeUndefined();
  });

  it('fails loudly when the written row cannot be read back', async () => {
    // Another writer removing the row between the write and the read (played by a trigger).
    db.connection.exec(`CREATE TRIGGER vanish AFTER INSERT ON device_enrolments
      BEGIN DELETE FROM device_enrolments WHERE jkt = NEW.jkt; END`);
    await expect(store.upsert(facts('alice', 'jkt-1'), 'pending')).rejects.toThrow(
      'Enrolment of jkt-1 vanished after it was written',
    );
  });

  it('dates by the wall clock unless given one', async () => {
    const own = new SqliteEnrolmentStore(db);
    const before = Date.now();
    const record = await own.upsert(facts('alice', 'jkt-1'), 'pending');
    const requested = Date.parse(record.requestedAt);
    expect(requested).toBeGreaterThanOrEqual(before - 1000);
    expect(requested).toBeLessThanOrEqual(Date.now() + 1000);
    const decided = await own.decide('alice', 'jkt-1', 'approved', 'it');
    expect(Date.parse(decided!.decidedAt!)).toBeGreaterThanOrEqual(before - 1000);
  });
});
