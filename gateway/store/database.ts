import { fsyncSync, mkdirSync, openSync, closeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE devices (
     user_id TEXT NOT NULL,
     jkt TEXT NOT NULL,
     device_id TEXT NOT NULL,
     public_jwk TEXT NOT NULL,
     assurance TEXT NOT NULL,
     platform TEXT NOT NULL,
     app_version TEXT NOT NULL,
     verdict TEXT NOT NULL,
     principal TEXT NOT NULL,
     enrolled_at TEXT NOT NULL,
     last_seen_at TEXT NOT NULL,
     revoked_at TEXT,
     PRIMARY KEY (user_id, jkt)
   );
   CREATE INDEX devices_by_user ON devices (user_id, last_seen_at);
   CREATE TABLE audit (
     seq INTEGER PRIMARY KEY,
     decision_id TEXT NOT NULL UNIQUE,
     at TEXT NOT NULL,
     kind TEXT NOT NULL,
     subject TEXT,
     data TEXT NOT NULL,
     prev_hash TEXT NOT NULL,
     hash TEXT NOT NULL
   );
   CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
     BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
   CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
     BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
   CREATE TABLE entitlement_versions (
     user_id TEXT PRIMARY KEY,
     ver INTEGER NOT NULL,
     fingerprint TEXT NOT NULL
   );`,
  `CREATE TABLE user_suspensions (
     user_id TEXT PRIMARY KEY,
     suspended_at TEXT NOT NULL,
     suspended_by TEXT NOT NULL,
     reason TEXT
   );`,
];

/**
 * Batch fsyncs allowed at once. Two, not one: a lone write (the access record of the next call)
 * then never waits behind the fsync of the previous call's last record; under load the batches
 * still grow while two fsyncs are in flight.
 */
const MAX_SYNCS_IN_FLIGHT = 2;

/** Longest a batch of only deferrable writes stays open (see `write`). */
const DEFERRED_COMMIT_MS = 20;

interface PendingWrite {
  /** What `write` resolves with (kept here rather than in a closure made per write). */
  readonly value: unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * The gateway's SQLite connection (Node's built-in `node:sqlite`, so nothing native is compiled).
 *
 * Statements are prepared once per SQL text and reused. Writes go through `write`, which
 * groups every write made in one turn of the event loop into one transaction: a single
 * COMMIT for the whole batch, then a single fsync of the WAL file on libuv's thread pool, and
 * each caller's promise settles only once that fsync is done. The event loop keeps serving
 * (and the next batch fills) while the disk syncs, instead of stalling in the COMMIT as
 * `synchronous = FULL` does. Only the batch COMMIT runs at `synchronous = NORMAL` (checkpoints
 * still sync); every other commit (migrations, single statements outside `write`) stays FULL.
 *
 * While two batches' fsyncs are in flight the next batch stays open and keeps filling; it commits
 * when one of them is done (group commit). Under load a batch then holds every write of
 * one fsync's time rather than of one event-loop turn, so COMMITs and fsyncs per write fall as
 * the load grows; a lone write still commits on the next turn. The transaction-control
 * statements are prepared once (an `exec` parses its SQL text on every call).
 */
export class GatewayDatabase {
  private readonly statements = new Map<string, StatementSync>();
  private readonly rollbackListeners = new Set<() => void>();
  private depth = 0;
  private batch: PendingWrite[] | undefined;
  private commits = 0;
  /** The WAL file, opened once for the group-commit fsyncs (SQLite keeps it while the connection is open). */
  private walHandle: Promise<FileHandle> | undefined;
  /** A flush is scheduled for the next turn of the event loop. */
  private flushScheduled = false;
  /** The open batch holds a write that is not deferrable (or its deferral is over). */
  private urgent = false;
  /** Commits a batch of deferrable writes only at the latest `DEFERRED_COMMIT_MS` after it opened. */
  private deferredTimer: NodeJS.Timeout | undefined;
  /** Batch fsyncs in flight; at `MAX_SYNCS_IN_FLIGHT` the open batch commits when one is done. */
  private syncing = 0;
  private readonly control: Record<
    'begin' | 'commit' | 'savepoint' | 'release' | 'rollbackTo' | 'normal' | 'full',
    StatementSync
  >;

  constructor(
    readonly connection: DatabaseSync,
    /** The WAL file to fsync after each group commit; none for an in-memory database. */
    private readonly walPath?: string,
  ) {
    this.control = {
      begin: connection.prepare('BEGIN IMMEDIATE'),
      commit: connection.prepare('COMMIT'),
      savepoint: connection.prepare('SAVEPOINT write'),
      release: connection.prepare('RELEASE write'),
      rollbackTo: connection.prepare('ROLLBACK TO write'),
      normal: connection.prepare('PRAGMA synchronous = NORMAL'),
      full: connection.prepare('PRAGMA synchronous = FULL'),
    };
  }

  /** A prepared statement for this SQL text, compiled on first use. */
  prepare(sql: string): StatementSync {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.connection.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  exec(sql: string): void {
    this.connection.exec(sql);
  }

  /** Number of group commits so far (each is one fsync). */
  get commitCount(): number {
    return this.commits;
  }

  /**
   * Runs `body` at once inside the current batch and resolves with its result after the
   * batch has committed durably. When `body` throws, only its own changes are rolled back.
   *
   * `singleChange`: `body` changes the database with at most one statement, its last step, so
   * SQLite's statement atomicity already undoes a failure and no savepoint is needed (two
   * statement runs fewer per write).
   *
   * `deferrable`: nobody is waiting for this write to be durable soon (a record made after the
   * answer was sent). It joins the open batch, or opens one that commits with the next write
   * that is not deferrable or after `DEFERRED_COMMIT_MS`, whichever comes first: a call made one
   * at a time then costs one COMMIT and one fsync instead of two, and its fsync does not queue
   * behind the previous call's in the kernel. Its promise still settles only once it is durable.
   */
  write<T>(
    body: () => T,
    options: { readonly singleChange?: boolean; readonly deferrable?: boolean } = {},
  ): Promise<T> {
    if (this.depth > 0) {
      try {
        return Promise.resolve(body());
      } catch (error) {
        return Promise.reject(error as Error);
      }
    }
    if (!this.batch) {
      // The batch's COMMIT leaves the fsync to `flush` (off the event loop); set outside the transaction.
      if (this.walPath) this.control.normal.run();
      this.control.begin.run();
      this.batch = [];
    }
    if (options.deferrable) {
      this.deferredTimer ??= setTimeout(() => {
        this.deferredTimer = undefined;
        this.urgent = true;
        this.scheduleFlush();
      }, DEFERRED_COMMIT_MS);
    } else {
      this.urgent = true;
      this.scheduleFlush();
    }
    const batch = this.batch;
    const savepoint = options.singleChange !== true;
    if (savepoint) this.control.savepoint.run();
    this.depth++;
    let result: T;
    try {
      result = body();
      if (savepoint) this.control.release.run();
    } catch (error) {
      if (savepoint) {
        this.control.rollbackTo.run();
        this.control.release.run();
      }
      return Promise.reject(error as Error);
    } finally {
      this.depth--;
    }
    return new Promise<T>((resolve, reject) =>
      batch.push({ value: result, resolve: resolve as (value: unknown) => void, reject }),
    );
  }

  /** Calls `listener` when a batch fails to commit (in-memory state derived from it is stale). */
  onRollback(listener: () => void): void {
    this.rollbackListeners.add(listener);
  }

  /** Flushes on the next turn of the event loop, or once the fsync in flight is done. */
  private scheduleFlush(): void {
    if (this.flushScheduled || this.syncing >= MAX_SYNCS_IN_FLIGHT) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (this.syncing < MAX_SYNCS_IN_FLIGHT) this.flush();
    });
  }

  /** Commits the open batch now (called on the next turn of the event loop, and on close). */
  flush(): void {
    const batch = this.batch;
    if (!batch) return;
    this.batch = undefined;
    this.urgent = false;
    if (this.deferredTimer) {
      clearTimeout(this.deferredTimer);
      this.deferredTimer = undefined;
    }
    try {
      this.control.commit.run();
      this.restoreFullSync();
      this.commits++;
    } catch (error) {
      try {
        this.connection.exec('ROLLBACK');
      } catch {
        // already rolled back by SQLite
      }
      this.restoreFullSync();
      for (const listener of this.rollbackListeners) listener();
      for (const pending of batch) pending.reject(error);
      return;
    }
    if (!this.walPath) {
      for (const pending of batch) pending.resolve(pending.value);
      return;
    }
    // The fsync starts after the COMMIT wrote the batch to the WAL, so it covers it (and every
    // earlier batch); a failed fsync fails the batch's callers rather than claiming durability.
    this.syncing++;
    this.syncWal().then(
      () => {
        this.syncDone();
        for (const pending of batch) pending.resolve(pending.value);
      },
      (error: unknown) => {
        this.syncDone();
        for (const pending of batch) pending.reject(error);
      },
    );
  }

  /** The fsync in flight is done: the batch that filled meanwhile commits next. */
  private syncDone(): void {
    this.syncing--;
    if (this.batch && this.urgent) this.scheduleFlush();
  }

  private async syncWal(): Promise<void> {
    this.walHandle ??= open(this.walPath!, 'r');
    const handle = this.walHandle;
    try {
      await (await handle).sync();
    } catch (error) {
      // Open it afresh next time; this batch fails rather than claiming durability.
      if (this.walHandle === handle) this.walHandle = undefined;
      void handle.then((opened) => opened.close()).catch(() => {});
      throw error;
    }
  }

  private restoreFullSync(): void {
    if (this.walPath) this.control.full.run();
  }

  /** Returns a function that runs `body` in one transaction (nested calls join the outer one). */
  transaction<T>(body: () => T): () => T {
    return () => {
      if (this.depth > 0) return body();
      this.flush();
      this.connection.exec('BEGIN IMMEDIATE');
      this.depth++;
      try {
        const result = body();
        this.connection.exec('COMMIT');
        return result;
      } catch (error) {
        this.connection.exec('ROLLBACK');
        throw error;
      } finally {
        this.depth--;
      }
    };
  }

  close(): void {
    this.flush();
    if (this.walPath) {
      try {
        const fd = openSync(this.walPath, 'r');
        try {
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
      } catch {
        // no WAL file: nothing was written since the last checkpoint
      }
    }
    const handle = this.walHandle;
    this.walHandle = undefined;
    void handle?.then((opened) => opened.close()).catch(() => {});
    this.statements.clear();
    this.connection.close();
  }
}

/**
 * Opens (creating if needed) the gateway's SQLite database and applies pending migrations.
 *
 * WAL mode lets several readers run beside the one writer; `user_version` records the schema.
 */
export function openGatewayDatabase(path: string): GatewayDatabase {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new GatewayDatabase(new DatabaseSync(path), path === ':memory:' ? undefined : `${path}-wal`);
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA busy_timeout = 5000');
  // Every commit is durable: FULL, except `write`'s group commits, which fsync the WAL themselves.
  db.exec('PRAGMA synchronous = FULL');
  db.exec('PRAGMA foreign_keys = ON');
  const version = (db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
  for (let index = version; index < MIGRATIONS.length; index++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[index] as string);
      db.exec(`PRAGMA user_version = ${index + 1}`);
    })();
  }
  return db;
}
