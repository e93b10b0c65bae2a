import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openGatewayDatabase, type GatewayDatabase } from './database';

let dir: string | undefined;
let db: GatewayDatabase | undefined;
afterEach(() => {
  db?.close();
  db = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const safety = (database: GatewayDatabase) =>
  (database.prepare('PRAGMA synchronous').get() as { synchronous: number }).synchronous;

describe('GatewayDatabase group commit', () => {
  it('commits the writes of one turn together, resolves them after the sync, and keeps FULL outside the batch', async () => {
    dir = mkdtempSync(join(tmpdir(), 'clearance-db-'));
    const path = join(dir, 'gateway.db');
    db = openGatewayDatabase(path);
    db.exec('CREATE TABLE notes (text TEXT NOT NULL)');
    const FULL = 2;
    const NORMAL = 1;
    expect(safety(db)).toBe(FULL);
    const before = db.commitCount;
    const writes = ['a', 'b', 'c'].map((text) =>
      db!.write(() => db!.prepare('INSERT INTO notes VALUES (?)').run(text)),
    );
    // Inside the open batch the COMMIT leaves the fsync to the batch itself.
    expect(safety(db)).toBe(NORMAL);
    let settled = false;
    void Promise.all(writes).then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
    await Promise.all(writes);
    expect(db.commitCount).toBe(before + 1);
    expect(safety(db)).toBe(FULL);
    db.close();
    db = openGatewayDatabase(path);
    expect(db.prepare('SELECT text FROM notes ORDER BY rowid').all()).toEqual([
      { text: 'a' },
      { text: 'b' },
      { text: 'c' },
    ]);
  });

  it('rolls back only the failing write of a batch', async () => {
    dir = mkdtempSync(join(tmpdir(), 'clearance-db-'));
    db = openGatewayDatabase(join(dir, 'gateway.db'));
    db.exec('CREATE TABLE notes (text TEXT NOT NULL UNIQUE)');
    const good = db.write(() => db!.prepare('INSERT INTO notes VALUES (?)').run('a'));
    const bad = db.write(() => db!.prepare('INSERT INTO notes VALUES (?)').run('a'));
    await expect(bad).rejects.toThrow(/UNIQUE/);
    await good;
    expect(db.prepare('SELECT count(*) AS n FROM notes').get()).toEqual({ n: 1 });
  });

  it('commits a lone write at once beside one fsync in flight, then keeps the next batch open while two are', async () => {
    dir = mkdtempSync(join(tmpdir(), 'clearance-db-'));
    db = openGatewayDatabase(join(dir, 'gateway.db'));
    db.exec('CREATE TABLE notes (text TEXT NOT NULL)');
    // Holds each fsync (the real one still runs) until the test lets it finish.
    const internals = db as unknown as { syncWal: () => Promise<void> };
    const realSync = internals.syncWal.bind(db);
    const gates: (() => void)[] = [];
    internals.syncWal = async () => {
      // Gates in the order the fsyncs start (the real ones may finish in any order).
      const gate = new Promise<void>((resolve) => gates.push(resolve));
      await realSync();
      await gate;
    };
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    const insert = (text: string) => db!.write(() => db!.prepare('INSERT INTO notes VALUES (?)').run(text));
    const settled = new Set<string>();
    const track = (text: string) => insert(text).then(() => settled.add(text));
    const waitForGates = async (count: number) => {
      while (gates.length < count) await turn();
    };
    const before = db.commitCount;
    const first = track('a');
    await turn();
    expect(db.commitCount).toBe(before + 1);
    // The next turn's write does not wait for the first fsync: it commits with its own.
    const second = track('b');
    await turn();
    expect(db.commitCount).toBe(before + 2);
    // Two fsyncs held: three more turns of writes fill one batch and none of them commits yet.
    const later = [track('c')];
    await turn();
    later.push(track('d'));
    await turn();
    later.push(track('e'));
    await turn();
    expect(db.commitCount).toBe(before + 2);
    expect(settled.size).toBe(0);
    await waitForGates(2);
    gates.shift()!();
    await first;
    expect([...settled]).toEqual(['a']);
    // The batch that filled meanwhile commits once, and settles only after its own fsync.
    await waitForGates(2);
    expect(db.commitCount).toBe(before + 3);
    gates.shift()!();
    await second;
    expect([...settled].sort()).toEqual(['a', 'b']);
    await waitForGates(1);
    gates.shift()!();
    await Promise.all(later);
    expect([...settled].sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(db.commitCount).toBe(before + 3);
    expect(db.prepare('SELECT text FROM notes ORDER BY rowid').all()).toEqual(
      ['a', 'b', 'c', 'd', 'e'].map((text) => ({ text })),
    );
  });

  it('lets a deferrable write wait for the next write or 20 ms, then commits them together', async () => {
    dir = mkdtempSync(join(tmpdir(), 'clearance-db-'));
    db = openGatewayDatabase(join(dir, 'gateway.db'));
    db.exec('CREATE TABLE notes (text TEXT NOT NULL)');
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    const insert = (text: string, deferrable: boolean) =>
      db!.write(() => db!.prepare('INSERT INTO notes VALUES (?)').run(text), { deferrable });
    const before = db.commitCount;
    let deferredDone = false;
    const deferred = insert('after the answer', true).then(() => (deferredDone = true));
    for (let index = 0; index < 3; index++) await turn();
    // Not committed yet, but visible on this connection (the gateway reads its own writes).
    expect(db.commitCount).toBe(before);
    expect(deferredDone).toBe(false);
    expect(db.prepare('SELECT count(*) AS n FROM notes').get()).toEqual({ n: 1 });
    // The next call's record commits both in one COMMIT and one fsync.
    await insert('next call', false);
    await deferred;
    expect(db.commitCount).toBe(before + 1);
    // Alone, a deferrable write commits within the deferral.
    const started = performance.now();
    await insert('alone', true);
    expect(db.commitCount).toBe(before + 2);
    expect(performance.now() - started).toBeGreaterThanOrEqual(15);
  });
});
