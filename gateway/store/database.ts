import { mkdirSync } from 'node:fs';
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
 * The gateway's SQLite connection (Node's built-in `node:sqlite`, so nothing native is compiled).
 *
 * Statements are prepared once per SQL text and reused; `transaction` wraps a function in
 * BEGIN IMMEDIATE … COMMIT and rolls back when it throws.
 */
export class GatewayDatabase {
  private readonly statements = new Map<string, StatementSync>();
  private depth = 0;

  constructor(readonly connection: DatabaseSync) {}

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

  /** Returns a function that runs `body` in one transaction (nested calls join the outer one). */
  transaction<T>(body: () => T): () => T {
    return () => {
      if (this.depth > 0) return body();
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
  const db = new GatewayDatabase(new DatabaseSync(path));
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA busy_timeout = 5000');
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
