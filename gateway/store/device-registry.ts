import type { JWK } from 'jose';
import type { DeviceAssurance, DeviceVerdict, PostureReportClaims } from '../../shared/device';
import type { GatewayDatabase } from './database';

/** Who the user was when the device was last attested (for IT's explain view). */
export interface PrincipalSnapshot {
  readonly name?: string;
  readonly username?: string;
  readonly groups: readonly string[];
}

/** A device key enrolled for one user. */
export interface DeviceEnrolment {
  readonly userId: string;
  /** RFC 7638 thumbprint of the device public key; `device_jkt` of the user's tokens. */
  readonly jkt: string;
  readonly deviceId: string;
  readonly publicJwk: JWK;
  readonly assurance: DeviceAssurance;
  readonly platform: PostureReportClaims['platform'];
  readonly appVersion: string;
  readonly verdict: DeviceVerdict;
  readonly principal: PrincipalSnapshot;
  readonly enrolledAt: string;
  readonly lastSeenAt: string;
  readonly revokedAt?: string;
}

/** What an attestation records; the registry adds the timestamps. */
export type DeviceAttestation = Omit<DeviceEnrolment, 'enrolledAt' | 'lastSeenAt' | 'revokedAt'>;

/**
 * Enrolled device keys per user.
 *
 * Asynchronous so a shared database can replace the local SQLite file.
 */
export interface DeviceRegistry {
  /** Enrols the key on first sight, otherwise refreshes its verdict. Revoked keys stay revoked. */
  enrol(attestation: DeviceAttestation): Promise<DeviceEnrolment>;
  find(userId: string, jkt: string): Promise<DeviceEnrolment | undefined>;
  listForUser(userId: string): Promise<readonly DeviceEnrolment[]>;
  /** The most recently seen device of a user, found by user id or username. */
  latestForUser(userIdOrUsername: string): Promise<DeviceEnrolment | undefined>;
  /** Marks the key revoked; returns false when it was not enrolled. */
  revoke(userId: string, jkt: string): Promise<boolean>;
}

interface DeviceRow {
  user_id: string;
  jkt: string;
  device_id: string;
  public_jwk: string;
  assurance: DeviceAssurance;
  platform: PostureReportClaims['platform'];
  app_version: string;
  verdict: string;
  principal: string;
  enrolled_at: string;
  last_seen_at: string;
  revoked_at: string | null;
}

/** The device registry in the gateway's SQLite database. */
export class SqliteDeviceRegistry implements DeviceRegistry {
  constructor(
    private readonly db: GatewayDatabase,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async enrol(attestation: DeviceAttestation): Promise<DeviceEnrolment> {
    const now = this.clock().toISOString();
    await this.db.write(() =>
      this.db
        .prepare(
          `INSERT INTO devices (user_id, jkt, device_id, public_jwk, assurance, platform, app_version, verdict, principal,
                              enrolled_at, last_seen_at)
         VALUES (@userId, @jkt, @deviceId, @publicJwk, @assurance, @platform, @appVersion, @verdict, @principal, @now, @now)
         ON CONFLICT (user_id, jkt) DO UPDATE SET
           device_id = excluded.device_id, assurance = excluded.assurance, platform = excluded.platform,
           app_version = excluded.app_version, verdict = excluded.verdict, principal = excluded.principal,
           last_seen_at = excluded.last_seen_at`,
        )
        .run({
          userId: attestation.userId,
          jkt: attestation.jkt,
          deviceId: attestation.deviceId,
          publicJwk: JSON.stringify(attestation.publicJwk),
          assurance: attestation.assurance,
          platform: attestation.platform,
          appVersion: attestation.appVersion,
          verdict: JSON.stringify(attestation.verdict),
          principal: JSON.stringify(attestation.principal),
          now,
        }),
    );
    const stored = await this.find(attestation.userId, attestation.jkt);
    if (!stored) throw new Error(`Device ${attestation.jkt} of ${attestation.userId} vanished after enrolment`);
    return stored;
  }

  async find(userId: string, jkt: string): Promise<DeviceEnrolment | undefined> {
    const row = this.db.prepare('SELECT * FROM devices WHERE user_id = ? AND jkt = ?').get(userId, jkt) as
      DeviceRow | undefined;
    return row ? fromRow(row) : undefined;
  }

  async listForUser(userId: string): Promise<readonly DeviceEnrolment[]> {
    const rows = this.db
      .prepare('SELECT * FROM devices WHERE user_id = ? ORDER BY last_seen_at DESC')
      .all(userId) as unknown as DeviceRow[];
    return rows.map(fromRow);
  }

  async latestForUser(userIdOrUsername: string): Promise<DeviceEnrolment | undefined> {
    const row = this.db
      .prepare(
        `SELECT * FROM devices WHERE user_id = ? OR json_extract(principal, '$.username') = ?
         ORDER BY last_seen_at DESC LIMIT 1`,
      )
      .get(userIdOrUsername, userIdOrUsername) as DeviceRow | undefined;
    return row ? fromRow(row) : undefined;
  }

  async revoke(userId: string, jkt: string): Promise<boolean> {
    const result = await this.db.write(() =>
      this.db
        .prepare('UPDATE devices SET revoked_at = ? WHERE user_id = ? AND jkt = ? AND revoked_at IS NULL')
        .run(this.clock().toISOString(), userId, jkt),
    );
    return result.changes > 0;
  }
}

function fromRow(row: DeviceRow): DeviceEnrolment {
  return {
    userId: row.user_id,
    jkt: row.jkt,
    deviceId: row.device_id,
    publicJwk: JSON.parse(row.public_jwk) as JWK,
    assurance: row.assurance,
    platform: row.platform,
    appVersion: row.app_version,
    verdict: JSON.parse(row.verdict) as DeviceVerdict,
    principal: JSON.parse(row.principal) as PrincipalSnapshot,
    enrolledAt: row.enrolled_at,
    lastSeenAt: row.last_seen_at,
    ...(row.revoked_at ? { revokedAt: row.revoked_at } : {}),
  };
}
