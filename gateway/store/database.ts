import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/** A better-sqlite3 connection. */
export type GatewayDatabase = Database.Database;

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
];

/**
 * Opens (creating if needed) the gateway's SQLite database and applies pending migrations.
 *
 * WAL mode lets several readers run beside the one writer; `user_version` records the schema.
 */
export function openGatewayDatabase(path: string): GatewayDatabase {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  const version = db.pragma('user_version', { simple: true }) as number;
  for (let index = version; index < MIGRATIONS.length; index++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[index] as string);
      db.pragma(`user_version = ${index + 1}`);
    })();
  }
  return db;
}
