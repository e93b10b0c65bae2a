import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestService } from '../../testing/services';
import type { EnrolmentFacts } from './enrolments';
import { PostgresEnrolmentStore } from './postgres-enrolments';

/**
 * The enrolment store in a real PostgreSQL (a throw-away server on a free loopback port), driven
 * directly: no gateway, one pool, the table emptied before each test.
 */
let postgres: TestService;
let pool: pg.Pool;
let store: PostgresEnrolmentStore;
const pools: pg.Pool[] = [];

/** The schema lock's two keys ("clra", "enr"). */
const LOCK = [0x636c7261, 0x656e72];

const newPool = (options: pg.PoolConfig = {}) => {
  const made = new pg.Pool({ connectionString: postgres.url, ...options });
  // A connection the server closes at the end of the file is no failure of the store.
  made.on('error', () => {});
  pools.push(made);
  return made;
};

beforeAll(async () => {
  postgres = await startTestPostgres();
  pool = newPool();
}, 60_000);
afterAll(async () => {
  // A pool whose connection was never given back cannot end (the test that proves it has failed already).
  await Promise.race([Promise.all(pools.map((p) => p.end())), new Promise((resolve) => setTimeout(resolve, 2_000))]);
  await postgres?.stop();
});
beforeEach(async () => {
  // Opened by the first test, so a failing open() fails that test.
  store ??= await PostgresEnrolmentStore.open(pool);
  await pool.query('TRUNCATE clearance_device_enrolments');
});

function facts(userId: string, jkt: string, extra: Partial<EnrolmentFacts> = {}): EnrolmentFacts {
  return { userId, jkt, deviceId: `device-${jkt}`, platform: 'linux', assurance: 'software', ...extra };
}

describe('PostgresEnrolmentStore.open', () => {
  it('creates the table and its index', async () => {
    const { rows } = await pool.query<{ indexname: string }>(
      "SELECT indexname FROM pg_indexes WHERE tablename = 'clearance_device_enrolments' ORDER BY indexname",
    );
    expect(rows.map((r) => r.indexname)).toEqual([
      'clearance_device_enrolments_by_status',
      'clearance_device_enrolments_pkey',
    ]);
  });

  it('opens again over an existing table, keeping its devices', async () => {
    await store.upsert(facts('alice', 'jkt-1'), 'approved');
    const again = await PostgresEnrolmentStore.open(newPool());
    expect((await again.find('alice', 'jkt-1'))?.status).toBe('approved');
  });

  it('gives its connection back and its schema lock up', async () => {
    const single = newPool({ max: 1, connectionTimeoutMillis: 5_000 });
    const opened = await PostgresEnrolmentStore.open(single);
    // The pool's only connection is free again.
    expect(await opened.find('nobody', 'none')).toBeUndefined();
    // Another session can take the lock at once.
    const { rows } = await pool.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS locked', LOCK);
    expect(rows[0]?.locked).toBe(true);
    await pool.query('SELECT pg_advisory_unlock_all()');
  });

  it('waits for the schema lock another instance holds', async () => {
    const holder = await pool.connect();
    try {
      // Free at once: every open() before this one gave it up.
      const { rows: taken } = await holder.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_lock($1, $2) AS locked',
        LOCK,
      );
      expect(taken[0]?.locked).toBe(true);
      let settled = false;
      const opening = PostgresEnrolmentStore.open(newPool()).finally(() => {
        settled = true;
      });
      // Until a session waits for that very lock (the keys are classid and objid of a two-key advisory lock).
      for (;;) {
        expect(settled).toBe(false);
        const { rows } = await pool.query<{ waiting: string }>(
          `SELECT count(*) AS waiting FROM pg_locks
           WHERE locktype = 'advisory' AND NOT granted AND classid = $1 AND objid = $2 AND objsubid = 2`,
          LOCK,
        );
        if (rows[0]?.waiting === '1') break;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(settled).toBe(false);
      await holder.query('SELECT pg_advisory_unlock($1, $2)', LOCK);
      await expect(opening).resolves.toBeInstanceOf(PostgresEnrolmentStore);
    } finally {
      holder.release();
    }
  });
});

describe('PostgresEnrolmentStore', () => {
  it('records a device seen for the first time with the initial status, its facts and both dates', async () => {
    const given = facts('alice', 'jkt-1', {
      username: 'alice@lab.example',
      assurance: 'hardware',
      ekFingerprint: 'ek-1',
      managed: 'verified',
      certificate: { subject: 'CN=laptop', serial: '01', fingerprint: 'fp', via: 'proxy' },
    });
    const before = Date.now();
    const record = await store.upsert(given, 'pending');
    expect(record).toStrictEqual({
      ...given,
      status: 'pending',
      requestedAt: record.requestedAt,
      lastSeenAt: record.requestedAt,
    });
    expect(Math.abs(Date.parse(record.requestedAt) - before)).toBeLessThan(60_000);
    expect(await store.find('alice', 'jkt-1')).toStrictEqual(record);
  });

  it('a device seen again keeps its status and request date, and takes the new facts and last-seen date', async () => {
    const first = await store.upsert(facts('alice', 'jkt-1'), 'pending');
    const again = await store.upsert(facts('alice', 'jkt-1', { deviceId: 'renamed', platform: 'win32' }), 'approved');
    expect(again).toStrictEqual({
      ...facts('alice', 'jkt-1', { deviceId: 'renamed', platform: 'win32' }),
      status: 'pending',
      requestedAt: first.requestedAt,
      lastSeenAt: again.lastSeenAt,
    });
    expect(Date.parse(again.lastSeenAt)).toBeGreaterThan(Date.parse(first.lastSeenAt));
  });

  it('keeps the same key of two people apart, and finds nothing for what never asked', async () => {
    await store.upsert(facts('alice', 'jkt-1'), 'approved');
    await store.upsert(facts('bob', 'jkt-1'), 'pending');
    expect((await store.find('alice', 'jkt-1'))?.status).toBe('approved');
    expect((await store.find('bob', 'jkt-1'))?.status).toBe('pending');
    expect(await store.find('carol', 'jkt-1')).toBeUndefined();
    expect(await store.find('alice', 'jkt-2')).toBeUndefined();
  });

  it('decides: sets the status, when and who, and only for that device', async () => {
    const first = await store.upsert(facts('alice', 'jkt-1'), 'pending');
    await store.upsert(facts('alice', 'jkt-2'), 'pending');
    const decided = await store.decide('alice', 'jkt-1', 'retired', 'it-admin');
    expect(decided).toStrictEqual({
      ...facts('alice', 'jkt-1'),
      status: 'retired',
      requestedAt: first.requestedAt,
      lastSeenAt: first.lastSeenAt,
      decidedAt: decided?.decidedAt,
      decidedBy: 'it-admin',
    });
    expect(Date.parse(decided!.decidedAt!)).toBeGreaterThan(Date.parse(first.requestedAt));
    expect(await store.find('alice', 'jkt-1')).toStrictEqual(decided);
    const other = await store.find('alice', 'jkt-2');
    expect(other?.status).toBe('pending');
    expect(other).not.toHaveProperty('decidedAt');
    expect(other).not.toHaveProperty('decidedBy');
  });

  it('never brings a retired device back: another decision changes nothing and answers it retired', async () => {
    await store.upsert(facts('alice', 'jkt-1'), 'approved');
    const retired = await store.decide('alice', 'jkt-1', 'retired', 'first-admin');
    expect(await store.decide('alice', 'jkt-1', 'approved', 'it-admin')).toStrictEqual(retired);
    expect(await store.decide('alice', 'jkt-1', 'pending', 'it-admin')).toStrictEqual(retired);
    expect(await store.find('alice', 'jkt-1')).toStrictEqual(retired);
    // Retiring it again records the later decision.
    const again = await store.decide('alice', 'jkt-1', 'retired', 'second-admin');
    expect(again).toMatchObject({ status: 'retired', decidedBy: 'second-admin' });
    expect(Date.parse(again!.decidedAt!)).toBeGreaterThan(Date.parse(retired!.decidedAt!));
  });

  it('answers a device retired while its approval waited as retired, as it now is', async () => {
    await store.upsert(facts('alice', 'jkt-1'), 'pending');
    // Another instance retires the device and holds the row until it commits.
    const other = await pool.connect();
    try {
      await other.query('BEGIN');
      await other.query(
        "UPDATE clearance_device_enrolments SET status = 'retired', decided_at = now(), decided_by = 'other-admin' WHERE user_id = 'alice' AND jkt = 'jkt-1'",
      );
      let settled = false;
      const approving = store.decide('alice', 'jkt-1', 'approved', 'it-admin').finally(() => {
        settled = true;
      });
      // Until the approval waits for that row.
      for (;;) {
        expect(settled).toBe(false);
        const { rows } = await pool.query<{ waiting: string }>(
          "SELECT count(*) AS waiting FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted",
        );
        if (rows[0]?.waiting === '1') break;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await other.query('COMMIT');
      // Not the pending row the approval's statement started from: the route answers 409 on this.
      expect(await approving).toMatchObject({ status: 'retired', decidedBy: 'other-admin' });
      expect(await store.find('alice', 'jkt-1')).toMatchObject({ status: 'retired', decidedBy: 'other-admin' });
    } finally {
      other.release();
    }
  });

  it('decides nothing for a device that never asked', async () => {
    await store.upsert(facts('alice', 'jkt-1'), 'pending');
    expect(await store.decide('alice', 'jkt-9', 'approved', 'it-admin')).toBeUndefined();
    expect(await store.decide('bob', 'jkt-1', 'approved', 'it-admin')).toBeUndefined();
    expect((await store.list()).map((r) => [r.userId, r.jkt, r.status])).toEqual([['alice', 'jkt-1', 'pending']]);
  });

  it('lists in request order, by status, by user id or username, or both', async () => {
    await store.upsert(facts('u-2', 'b', { username: 'bob@lab.example' }), 'pending');
    await store.upsert(facts('u-1', 'a', { username: 'alice@lab.example' }), 'approved');
    await store.upsert(facts('u-1', 'c'), 'pending');
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

  it('refuses a status outside the three it knows', async () => {
    await expect(store.upsert(facts('alice', 'jkt-1'), 'unknown' as never)).rejects.toThrow(/check constraint/);
    expect(await store.find('alice', 'jkt-1')).toBeUndefined();
  });
});
