import pg from 'pg';
import type { JWK } from 'jose';
import type { DeviceVerdict } from '../../shared/device';
import {
  AuditChainWalk,
  GENESIS_HASH,
  hashAuditRecord,
  newDecisionId,
  parseAuditData,
  type AuditEntry,
  type AuditKind,
  type AuditLog,
  type AuditRecord,
  type ChainVerification,
  auditRowValues,
} from './audit-log';
import type { DeviceAttestation, DeviceEnrolment, DeviceRegistry, PrincipalSnapshot } from './device-registry';
import type { EntitlementVersions } from './entitlement-versions';
import type { UserSuspension, UserSuspensions } from './user-suspensions';

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS clearance_devices (
     user_id TEXT NOT NULL,
     jkt TEXT NOT NULL,
     device_id TEXT NOT NULL,
     public_jwk JSONB NOT NULL,
     assurance TEXT NOT NULL,
     platform TEXT NOT NULL,
     app_version TEXT NOT NULL,
     verdict JSONB NOT NULL,
     principal JSONB NOT NULL,
     enrolled_at TIMESTAMPTZ NOT NULL,
     last_seen_at TIMESTAMPTZ NOT NULL,
     revoked_at TIMESTAMPTZ,
     PRIMARY KEY (user_id, jkt)
   );
   CREATE INDEX IF NOT EXISTS clearance_devices_by_user ON clearance_devices (user_id, last_seen_at DESC);
   CREATE INDEX IF NOT EXISTS clearance_devices_by_username ON clearance_devices ((principal->>'username'));
   CREATE TABLE IF NOT EXISTS clearance_audit (
     seq BIGINT PRIMARY KEY,
     decision_id TEXT NOT NULL UNIQUE,
     at TEXT NOT NULL,
     kind TEXT NOT NULL,
     subject TEXT,
     data TEXT NOT NULL,
     prev_hash TEXT NOT NULL,
     hash TEXT NOT NULL
   );
   CREATE OR REPLACE FUNCTION clearance_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
   DROP TRIGGER IF EXISTS clearance_audit_no_change ON clearance_audit;
   CREATE TRIGGER clearance_audit_no_change BEFORE UPDATE OR DELETE ON clearance_audit
     FOR EACH ROW EXECUTE FUNCTION clearance_audit_append_only();
   CREATE TABLE IF NOT EXISTS clearance_entitlement_versions (
     user_id TEXT PRIMARY KEY,
     ver BIGINT NOT NULL,
     fingerprint TEXT NOT NULL
   );`,
  `CREATE TABLE IF NOT EXISTS clearance_user_suspensions (
     user_id TEXT PRIMARY KEY,
     suspended_at TIMESTAMPTZ NOT NULL,
     suspended_by TEXT NOT NULL,
     reason TEXT
   );`,
];

/** Advisory lock keys (two int4s: "clearance", then the purpose). */
const LOCK_NAMESPACE = 0x636c7261;
const MIGRATION_LOCK = 1;
const AUDIT_LOCK = 2;

/** Options for `openPostgresStores`. */
export interface PostgresStoreOptions {
  /** `postgres://user@host:port/db`. */
  readonly connectionString: string;
  /** Pool size; default 10. */
  readonly max?: number;
}

/** The gateway's stores in one PostgreSQL database, shared by every instance. */
export interface PostgresStores {
  readonly devices: PostgresDeviceRegistry;
  readonly audit: PostgresAuditLog;
  readonly versions: PostgresEntitlementVersions;
  readonly suspensions: PostgresUserSuspensions;
  readonly pool: pg.Pool;
  close(): Promise<void>;
}

/**
 * Connects, applies the schema (under an advisory lock, so instances starting together do not
 * race) and returns the stores. Full durability is PostgreSQL's default
 * (`synchronous_commit = on`); audit appends are grouped into one transaction per batch.
 */
export async function openPostgresStores(options: PostgresStoreOptions): Promise<PostgresStores> {
  const pool = new pg.Pool({ connectionString: options.connectionString, max: options.max ?? 10 });
  pool.on('error', () => {
    // An idle client lost its connection; the pool replaces it on the next query.
  });
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1, $2)', [LOCK_NAMESPACE, MIGRATION_LOCK]);
    for (const sql of MIGRATIONS) await client.query(sql);
    await client.query('SELECT pg_advisory_unlock($1, $2)', [LOCK_NAMESPACE, MIGRATION_LOCK]);
  } finally {
    client.release();
  }
  const audit = new PostgresAuditLog(pool);
  return {
    devices: new PostgresDeviceRegistry(pool),
    audit,
    versions: new PostgresEntitlementVersions(pool),
    suspensions: new PostgresUserSuspensions(pool),
    pool,
    async close() {
      await audit.drain();
      await pool.end();
    },
  };
}

interface DeviceRow {
  user_id: string;
  jkt: string;
  device_id: string;
  public_jwk: JWK;
  assurance: DeviceEnrolment['assurance'];
  platform: DeviceEnrolment['platform'];
  app_version: string;
  verdict: DeviceVerdict;
  principal: PrincipalSnapshot;
  enrolled_at: Date;
  last_seen_at: Date;
  revoked_at: Date | null;
}

/** The device registry in PostgreSQL: a key revoked at one instance is revoked at all. */
export class PostgresDeviceRegistry implements DeviceRegistry {
  constructor(private readonly pool: pg.Pool) {}

  async enrol(attestation: DeviceAttestation): Promise<DeviceEnrolment> {
    const { rows } = await this.pool.query<DeviceRow>(
      `INSERT INTO clearance_devices (user_id, jkt, device_id, public_jwk, assurance, platform, app_version, verdict,
                                      principal, enrolled_at, last_seen_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now(), now())
       ON CONFLICT (user_id, jkt) DO UPDATE SET
         device_id = excluded.device_id, assurance = excluded.assurance, platform = excluded.platform,
         app_version = excluded.app_version, verdict = excluded.verdict, principal = excluded.principal,
         last_seen_at = excluded.last_seen_at
       RETURNING *`,
      [
        attestation.userId,
        attestation.jkt,
        attestation.deviceId,
        JSON.stringify(attestation.publicJwk),
        attestation.assurance,
        attestation.platform,
        attestation.appVersion,
        JSON.stringify(attestation.verdict),
        JSON.stringify(attestation.principal),
      ],
    );
    return fromDeviceRow(rows[0]!);
  }

  async find(userId: string, jkt: string): Promise<DeviceEnrolment | undefined> {
    const { rows } = await this.pool.query<DeviceRow>(
      'SELECT * FROM clearance_devices WHERE user_id = $1 AND jkt = $2',
      [userId, jkt],
    );
    return rows[0] ? fromDeviceRow(rows[0]) : undefined;
  }

  async listForUser(userId: string): Promise<readonly DeviceEnrolment[]> {
    const { rows } = await this.pool.query<DeviceRow>(
      'SELECT * FROM clearance_devices WHERE user_id = $1 ORDER BY last_seen_at DESC',
      [userId],
    );
    return rows.map(fromDeviceRow);
  }

  async latestForUser(userIdOrUsername: string): Promise<DeviceEnrolment | undefined> {
    const { rows } = await this.pool.query<DeviceRow>(
      `SELECT * FROM clearance_devices WHERE user_id = $1 OR principal->>'username' = $1
       ORDER BY last_seen_at DESC LIMIT 1`,
      [userIdOrUsername],
    );
    return rows[0] ? fromDeviceRow(rows[0]) : undefined;
  }

  async revoke(userId: string, jkt: string): Promise<boolean> {
    const result = await this.pool.query(
      'UPDATE clearance_devices SET revoked_at = now() WHERE user_id = $1 AND jkt = $2 AND revoked_at IS NULL',
      [userId, jkt],
    );
    return (result.rowCount ?? 0) > 0;
  }
}

function fromDeviceRow(row: DeviceRow): DeviceEnrolment {
  return {
    userId: row.user_id,
    jkt: row.jkt,
    deviceId: row.device_id,
    publicJwk: row.public_jwk,
    assurance: row.assurance,
    platform: row.platform,
    appVersion: row.app_version,
    verdict: row.verdict,
    principal: row.principal,
    enrolledAt: row.enrolled_at.toISOString(),
    lastSeenAt: row.last_seen_at.toISOString(),
    ...(row.revoked_at ? { revokedAt: row.revoked_at.toISOString() } : {}),
  };
}

/** Entitlement versions in PostgreSQL: one upsert raises `ver` atomically across instances. */
export class PostgresEntitlementVersions implements EntitlementVersions {
  constructor(private readonly pool: pg.Pool) {}

  async versionFor(userId: string, fingerprint: string): Promise<number> {
    const { rows } = await this.pool.query<{ ver: string }>(
      `INSERT INTO clearance_entitlement_versions AS v (user_id, ver, fingerprint) VALUES ($1, 1, $2)
       ON CONFLICT (user_id) DO UPDATE SET
         ver = CASE WHEN v.fingerprint = excluded.fingerprint THEN v.ver ELSE v.ver + 1 END,
         fingerprint = excluded.fingerprint
       RETURNING ver`,
      [userId, fingerprint],
    );
    return Number(rows[0]!.ver);
  }

  async current(userId: string): Promise<number> {
    const { rows } = await this.pool.query<{ ver: string }>(
      'SELECT ver FROM clearance_entitlement_versions WHERE user_id = $1',
      [userId],
    );
    return rows[0] ? Number(rows[0].ver) : 0;
  }
}

/** Suspended accounts in PostgreSQL: a suspension made at one instance holds at all. */
export class PostgresUserSuspensions implements UserSuspensions {
  constructor(private readonly pool: pg.Pool) {}

  async suspend(userId: string, actor: string, reason?: string): Promise<boolean> {
    const result = await this.pool.query(
      `INSERT INTO clearance_user_suspensions (user_id, suspended_at, suspended_by, reason) VALUES ($1, now(), $2, $3)
       ON CONFLICT (user_id) DO NOTHING`,
      [userId, actor, reason ?? null],
    );
    return (result.rowCount ?? 0) > 0;
  }

  async resume(userId: string): Promise<boolean> {
    const result = await this.pool.query('DELETE FROM clearance_user_suspensions WHERE user_id = $1', [userId]);
    return (result.rowCount ?? 0) > 0;
  }

  async find(userId: string): Promise<UserSuspension | undefined> {
    const { rows } = await this.pool.query<{
      user_id: string;
      suspended_at: Date;
      suspended_by: string;
      reason: string | null;
    }>('SELECT * FROM clearance_user_suspensions WHERE user_id = $1', [userId]);
    const row = rows[0];
    return row
      ? {
          userId: row.user_id,
          suspendedAt: row.suspended_at.toISOString(),
          suspendedBy: row.suspended_by,
          reason: row.reason,
        }
      : undefined;
  }
}

interface AuditRow {
  seq: string;
  decision_id: string;
  at: string;
  kind: AuditKind;
  subject: string | null;
  data: string;
  prev_hash: string;
  hash: string;
}

interface PendingAppend {
  readonly entry: AuditEntry;
  readonly resolve: (record: AuditRecord) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * The audit log in PostgreSQL: one hash chain for every instance.
 *
 * Appends made in one turn of the event loop are written as one batch: a transaction takes
 * the chain's advisory lock, reads the head, inserts the records linked to it and commits
 * (one durable commit per batch). Instances therefore interleave whole batches and the chain
 * stays a single line that `verifyChain` walks.
 */
export class PostgresAuditLog implements AuditLog {
  private queue: PendingAppend[] = [];
  private flushing: Promise<void> | undefined;
  private scheduled = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  append(entry: AuditEntry): Promise<AuditRecord> {
    return new Promise((resolve, reject) => {
      this.queue.push({ entry, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves when every append made so far has been committed or refused. */
  async drain(): Promise<void> {
    while (this.queue.length > 0 || this.flushing || this.scheduled) {
      await (this.flushing ?? new Promise((resolve) => setImmediate(resolve)));
    }
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flushing = this.flush().finally(() => {
        this.flushing = undefined;
        if (this.queue.length > 0) this.schedule();
      });
    });
  }

  private async flush(): Promise<void> {
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    let client: pg.PoolClient | undefined;
    try {
      client = await this.pool.connect();
      // One round trip (a simple-protocol query of several statements, all constants) instead of
      // four: the instances' batches wait on each other's lock for less time.
      // Audit commits are durable whatever the server's default: the commit waits for its WAL flush.
      const opened = (await client.query(
        `BEGIN; SET LOCAL synchronous_commit = on; SELECT pg_advisory_xact_lock(${LOCK_NAMESPACE}, ${AUDIT_LOCK});
         SELECT seq, hash FROM clearance_audit ORDER BY seq DESC LIMIT 1`,
      )) as unknown as pg.QueryResult<{ seq: string; hash: string }>[];
      const head = opened[opened.length - 1]!;
      let seq = head.rows[0] ? Number(head.rows[0].seq) : 0;
      let prevHash = head.rows[0]?.hash ?? GENESIS_HASH;
      const records: AuditRecord[] = [];
      for (const { entry } of batch) {
        const unhashed = {
          seq: ++seq,
          decisionId: entry.decisionId ?? newDecisionId(),
          at: this.clock().toISOString(),
          kind: entry.kind,
          subject: entry.subject ?? null,
          data: JSON.parse(JSON.stringify(entry.data)) as Record<string, unknown>,
          prevHash,
        };
        const record = { ...unhashed, hash: hashAuditRecord(unhashed) };
        records.push(record);
        prevHash = record.hash;
      }
      const values: unknown[] = [];
      const tuples = records.map((record, index) => {
        values.push(...auditRowValues(record));
        const base = index * 8;
        return `(${Array.from({ length: 8 }, (_, offset) => `$${base + offset + 1}`).join(', ')})`;
      });
      await client.query(
        `INSERT INTO clearance_audit (seq, decision_id, at, kind, subject, data, prev_hash, hash) VALUES ${tuples.join(', ')}`,
        values,
      );
      await client.query('COMMIT');
      batch.forEach((pending, index) => pending.resolve(records[index]!));
    } catch (error) {
      await client?.query('ROLLBACK').catch(() => {});
      for (const pending of batch) pending.reject(error);
    } finally {
      client?.release();
    }
  }

  async get(decisionId: string): Promise<AuditRecord | undefined> {
    const { rows } = await this.pool.query<AuditRow>('SELECT * FROM clearance_audit WHERE decision_id = $1', [
      decisionId,
    ]);
    return rows[0] ? fromAuditRow(rows[0]) : undefined;
  }

  async list(options: { readonly afterSeq?: number; readonly limit?: number } = {}): Promise<readonly AuditRecord[]> {
    const { rows } = await this.pool.query<AuditRow>(
      'SELECT * FROM clearance_audit WHERE seq > $1 ORDER BY seq LIMIT $2',
      [options.afterSeq ?? 0, options.limit ?? 1000],
    );
    return rows.map(fromAuditRow);
  }

  async verifyChain(): Promise<ChainVerification> {
    const chain = new AuditChainWalk();
    for (;;) {
      const { rows } = await this.pool.query<AuditRow>(
        'SELECT * FROM clearance_audit WHERE seq >= $1 ORDER BY seq LIMIT 5000',
        [chain.nextSeq],
      );
      if (rows.length === 0) break;
      for (const row of rows) {
        const broken = chain.next(Number(row.seq), row.prev_hash, row.hash, () => fromAuditRow(row));
        if (broken) return broken;
      }
    }
    return chain.result();
  }
}

function fromAuditRow(row: AuditRow): AuditRecord {
  return {
    seq: Number(row.seq),
    decisionId: row.decision_id,
    at: row.at,
    kind: row.kind,
    subject: row.subject,
    data: parseAuditData(Number(row.seq), row.data),
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}
