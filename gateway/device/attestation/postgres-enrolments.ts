import type pg from 'pg';
import type { EnrolmentFacts, EnrolmentRecord, EnrolmentStatus, EnrolmentStore } from './enrolments';

const SCHEMA = `CREATE TABLE IF NOT EXISTS clearance_device_enrolments (
  user_id TEXT NOT NULL,
  jkt TEXT NOT NULL,
  facts JSONB NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'retired')),
  requested_at TIMESTAMPTZ NOT NULL,
  last_seen_at TIMESTAMPTZ NOT NULL,
  decided_at TIMESTAMPTZ,
  decided_by TEXT,
  PRIMARY KEY (user_id, jkt)
);
CREATE INDEX IF NOT EXISTS clearance_device_enrolments_by_status
  ON clearance_device_enrolments (status, requested_at);`;

/** Advisory lock of this table's schema ("clearance", then the purpose; the stores use 1 and 2). */
const LOCK = [0x636c7261, 0x656e72] as const;

interface EnrolmentRow {
  user_id: string;
  jkt: string;
  facts: EnrolmentFacts;
  status: EnrolmentStatus;
  requested_at: Date;
  last_seen_at: Date;
  decided_at: Date | null;
  decided_by: string | null;
}

/**
 * The enrolment store in the PostgreSQL database every instance shares: a device approved or
 * retired at one instance is approved or retired at all of them.
 */
export class PostgresEnrolmentStore implements EnrolmentStore {
  private constructor(private readonly pool: pg.Pool) {}

  /** Creates the table if needed (under an advisory lock, so instances starting together do not race). */
  static async open(pool: pg.Pool): Promise<PostgresEnrolmentStore> {
    const client = await pool.connect();
    try {
      await client.query('SELECT pg_advisory_lock($1, $2)', [...LOCK]);
      try {
        await client.query(SCHEMA);
      } finally {
        await client.query('SELECT pg_advisory_unlock($1, $2)', [...LOCK]);
      }
    } finally {
      client.release();
    }
    return new PostgresEnrolmentStore(pool);
  }

  async upsert(facts: EnrolmentFacts, initial: EnrolmentStatus): Promise<EnrolmentRecord> {
    const { rows } = await this.pool.query<EnrolmentRow>(
      `INSERT INTO clearance_device_enrolments (user_id, jkt, facts, status, requested_at, last_seen_at)
       VALUES ($1, $2, $3, $4, now(), now())
       ON CONFLICT (user_id, jkt) DO UPDATE SET facts = excluded.facts, last_seen_at = excluded.last_seen_at
       RETURNING *`,
      [facts.userId, facts.jkt, JSON.stringify(facts), initial],
    );
    return fromRow(rows[0]!);
  }

  async find(userId: string, jkt: string): Promise<EnrolmentRecord | undefined> {
    const { rows } = await this.pool.query<EnrolmentRow>(
      'SELECT * FROM clearance_device_enrolments WHERE user_id = $1 AND jkt = $2',
      [userId, jkt],
    );
    return rows[0] ? fromRow(rows[0]) : undefined;
  }

  async list(
    filter: { status?: EnrolmentStatus | undefined; userId?: string | undefined } = {},
  ): Promise<readonly EnrolmentRecord[]> {
    const { rows } = await this.pool.query<EnrolmentRow>(
      `SELECT * FROM clearance_device_enrolments
       WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR user_id = $2 OR facts->>'username' = $2)
       ORDER BY requested_at`,
      [filter.status ?? null, filter.userId ?? null],
    );
    return rows.map(fromRow);
  }

  async decide(
    userId: string,
    jkt: string,
    status: EnrolmentStatus,
    actor: string,
  ): Promise<EnrolmentRecord | undefined> {
    await this.pool.query(
      `UPDATE clearance_device_enrolments SET status = $3, decided_at = now(), decided_by = $4
       WHERE user_id = $1 AND jkt = $2 AND (status <> 'retired' OR $3 = 'retired')`,
      [userId, jkt, status, actor],
    );
    // Read in a statement of its own: an update that waited for another instance's retirement and then
    // changed nothing must answer the device retired, as it now is, not as the update's statement began.
    return this.find(userId, jkt);
  }
}

function fromRow(row: EnrolmentRow): EnrolmentRecord {
  return {
    ...row.facts,
    status: row.status,
    requestedAt: row.requested_at.toISOString(),
    lastSeenAt: row.last_seen_at.toISOString(),
    ...(row.decided_at ? { decidedAt: row.decided_at.toISOString() } : {}),
    ...(row.decided_by ? { decidedBy: row.decided_by } : {}),
  };
}
