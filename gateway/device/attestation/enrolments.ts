import type { DeviceAssurance, PostureReportClaims } from '../../../shared/device';
import type { GatewayDatabase } from '../../store/database';

/** Where a device stands with the enrolment policy. */
export type EnrolmentStatus = 'pending' | 'approved' | 'retired';

/** What the gateway verified about a device when it asked to enrol. */
export interface EnrolmentFacts {
  readonly userId: string;
  /** Thumbprint of the device key (the tokens' `device_jkt`). */
  readonly jkt: string;
  readonly deviceId: string;
  readonly username?: string;
  readonly platform: PostureReportClaims['platform'];
  /** Verified assurance: `hardware` only after TPM key attestation. */
  readonly assurance: DeviceAssurance;
  /** SHA-256 fingerprint of the TPM's endorsement key certificate, when attested. */
  readonly ekFingerprint?: string;
  /** `verified` when the device presented a managed-device certificate from the organisation's CA. */
  readonly managed?: 'verified';
  /** That certificate, and whether the gateway's own TLS or a trusted proxy saw it. */
  readonly certificate?: {
    readonly subject: string;
    readonly serial: string;
    readonly fingerprint: string;
    readonly via: 'tls' | 'proxy';
  };
}

/** One device as IT sees it in `GET /v1/admin/devices`. */
export interface EnrolmentRecord extends EnrolmentFacts {
  readonly status: EnrolmentStatus;
  readonly requestedAt: string;
  readonly lastSeenAt: string;
  readonly decidedAt?: string;
  /** Who approved or retired it (the admin call's `actor`). */
  readonly decidedBy?: string;
}

/**
 * Every device that asked for a session, with its enrolment status.
 *
 * Asynchronous so a shared database can replace the local SQLite file.
 */
export interface EnrolmentStore {
  /** Records the device's facts; a device seen for the first time gets `initial` as its status. */
  upsert(facts: EnrolmentFacts, initial: EnrolmentStatus): Promise<EnrolmentRecord>;
  find(userId: string, jkt: string): Promise<EnrolmentRecord | undefined>;
  /** Every device, or those with `status` and of `userId` (an id or a username); an undefined filter member filters nothing. */
  list(filter?: {
    readonly status?: EnrolmentStatus | undefined;
    readonly userId?: string | undefined;
  }): Promise<readonly EnrolmentRecord[]>;
  /**
   * Sets the status with who decided; undefined when the device is unknown. A retired device stays
   * retired: any other decision for it changes nothing and answers its record as it is (so an approval
   * racing a retirement cannot bring the device back).
   */
  decide(userId: string, jkt: string, status: EnrolmentStatus, actor: string): Promise<EnrolmentRecord | undefined>;
}

interface EnrolmentRow {
  user_id: string;
  jkt: string;
  facts: string;
  status: EnrolmentStatus;
  requested_at: string;
  last_seen_at: string;
  decided_at: string | null;
  decided_by: string | null;
}

/** The enrolment store in the gateway's SQLite database (its table is created on first use). */
export class SqliteEnrolmentStore implements EnrolmentStore {
  constructor(
    private readonly db: GatewayDatabase,
    private readonly clock: () => Date = () => new Date(),
  ) {
    db.connection.exec(`CREATE TABLE IF NOT EXISTS device_enrolments (
      user_id TEXT NOT NULL,
      jkt TEXT NOT NULL,
      facts TEXT NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'retired')),
      requested_at TEXT NOT NULL,
      last_seen_at TEXT NOT NULL,
      decided_at TEXT,
      decided_by TEXT,
      PRIMARY KEY (user_id, jkt)
    );
    CREATE INDEX IF NOT EXISTS device_enrolments_by_status ON device_enrolments (status, requested_at);`);
  }

  async upsert(facts: EnrolmentFacts, initial: EnrolmentStatus): Promise<EnrolmentRecord> {
    const now = this.clock().toISOString();
    this.db
      .prepare(
        `INSERT INTO device_enrolments (user_id, jkt, facts, status, requested_at, last_seen_at)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (user_id, jkt) DO UPDATE SET facts = excluded.facts, last_seen_at = excluded.last_seen_at`,
      )
      .run(facts.userId, facts.jkt, JSON.stringify(facts), initial, now, now);
    const stored = await this.find(facts.userId, facts.jkt);
    if (!stored) throw new Error(`Enrolment of ${facts.jkt} vanished after it was written`);
    return stored;
  }

  async find(userId: string, jkt: string): Promise<EnrolmentRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM device_enrolments WHERE user_id = ? AND jkt = ?').get(userId, jkt) as
      EnrolmentRow | undefined;
    return row ? fromRow(row) : undefined;
  }

  async list(
    filter: { status?: EnrolmentStatus | undefined; userId?: string | undefined } = {},
  ): Promise<readonly EnrolmentRecord[]> {
    const rows = this.db
      .prepare(
        `SELECT * FROM device_enrolments
         WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR user_id = ?2 OR json_extract(facts, '$.username') = ?2)
         ORDER BY requested_at`,
      )
      .all(filter.status ?? null, filter.userId ?? null) as unknown as EnrolmentRow[];
    return rows.map(fromRow);
  }

  async decide(
    userId: string,
    jkt: string,
    status: EnrolmentStatus,
    actor: string,
  ): Promise<EnrolmentRecord | undefined> {
    this.db
      .prepare(
        `UPDATE device_enrolments SET status = ?1, decided_at = ?2, decided_by = ?3
         WHERE user_id = ?4 AND jkt = ?5 AND (status <> 'retired' OR ?1 = 'retired')`,
      )
      .run(status, this.clock().toISOString(), actor, userId, jkt);
    return this.find(userId, jkt);
  }
}

function fromRow(row: EnrolmentRow): EnrolmentRecord {
  return {
    ...(JSON.parse(row.facts) as EnrolmentFacts),
    status: row.status,
    requestedAt: row.requested_at,
    lastSeenAt: row.last_seen_at,
    ...(row.decided_at ? { decidedAt: row.decided_at } : {}),
    ...(row.decided_by ? { decidedBy: row.decided_by } : {}),
  };
}
