import type { GatewayDatabase } from './database';

/** A suspended account, as the registry stores it. */
export interface UserSuspension {
  readonly userId: string;
  readonly suspendedAt: string;
  /** Who suspended it (the admin credential's name). */
  readonly suspendedBy: string;
  readonly reason: string | null;
}

/**
 * Accounts IT has suspended: every call, session and enrolment of theirs is refused until resumed.
 *
 * Asynchronous so a shared database can stand in when several gateway instances run.
 */
export interface UserSuspensions {
  /** Suspends `userId`; false when already suspended. */
  suspend(userId: string, actor: string, reason?: string): Promise<boolean>;
  /** Lifts the suspension; false when the user was not suspended. */
  resume(userId: string): Promise<boolean>;
  find(userId: string): Promise<UserSuspension | undefined>;
}

interface SuspensionRow {
  user_id: string;
  suspended_at: string;
  suspended_by: string;
  reason: string | null;
}

/** Suspensions in the gateway's SQLite database (table `user_suspensions`). */
export class SqliteUserSuspensions implements UserSuspensions {
  constructor(
    private readonly db: GatewayDatabase,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async suspend(userId: string, actor: string, reason?: string): Promise<boolean> {
    const result = this.db
      .prepare(
        `INSERT INTO user_suspensions (user_id, suspended_at, suspended_by, reason) VALUES (?, ?, ?, ?)
         ON CONFLICT (user_id) DO NOTHING`,
      )
      .run(userId, this.clock().toISOString(), actor, reason ?? null);
    return Number(result.changes) > 0;
  }

  async resume(userId: string): Promise<boolean> {
    const result = this.db.prepare('DELETE FROM user_suspensions WHERE user_id = ?').run(userId);
    return Number(result.changes) > 0;
  }

  async find(userId: string): Promise<UserSuspension | undefined> {
    const row = this.db.prepare('SELECT * FROM user_suspensions WHERE user_id = ?').get(userId) as
      SuspensionRow | undefined;
    return row
      ? { userId: row.user_id, suspendedAt: row.suspended_at, suspendedBy: row.suspended_by, reason: row.reason }
      : undefined;
  }
}

/** Suspensions held in memory (tests, or a deployment that passes its own stores without one). */
export class InMemoryUserSuspensions implements UserSuspensions {
  private readonly byUser = new Map<string, UserSuspension>();

  async suspend(userId: string, actor: string, reason?: string): Promise<boolean> {
    if (this.byUser.has(userId)) return false;
    this.byUser.set(userId, {
      userId,
      suspendedAt: new Date().toISOString(),
      suspendedBy: actor,
      reason: reason ?? null,
    });
    return true;
  }

  async resume(userId: string): Promise<boolean> {
    return this.byUser.delete(userId);
  }

  async find(userId: string): Promise<UserSuspension | undefined> {
    return this.byUser.get(userId);
  }
}
