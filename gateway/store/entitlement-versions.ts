import type { GatewayDatabase } from './database';

/**
 * The per-user `ver` of entitlement documents.
 *
 * `ver` changes only when the content does (policy, catalog, groups or device verdict), and
 * only upwards, across restarts; clients reject a document whose `ver` is lower than one seen.
 */
export interface EntitlementVersions {
  /** Returns the user's `ver` for content with this fingerprint, increasing it if the content changed. */
  versionFor(userId: string, fingerprint: string): Promise<number>;
  /** The user's latest `ver`, or 0 when none was issued. */
  current(userId: string): Promise<number>;
}

/** Entitlement versions in the gateway's SQLite database. */
export class SqliteEntitlementVersions implements EntitlementVersions {
  constructor(private readonly db: GatewayDatabase) {}

  async versionFor(userId: string, fingerprint: string): Promise<number> {
    return this.db.write((): number => {
      const row = this.db.prepare('SELECT ver, fingerprint FROM entitlement_versions WHERE user_id = ?').get(userId) as
        { ver: number; fingerprint: string } | undefined;
      if (row && row.fingerprint === fingerprint) return row.ver;
      const ver = (row?.ver ?? 0) + 1;
      this.db
        .prepare(
          `INSERT INTO entitlement_versions (user_id, ver, fingerprint) VALUES (?, ?, ?)
           ON CONFLICT (user_id) DO UPDATE SET ver = excluded.ver, fingerprint = excluded.fingerprint`,
        )
        .run(userId, ver, fingerprint);
      return ver;
    });
  }

  async current(userId: string): Promise<number> {
    const row = this.db.prepare('SELECT ver FROM entitlement_versions WHERE user_id = ?').get(userId) as
      { ver: number } | undefined;
    return row?.ver ?? 0;
  }
}
