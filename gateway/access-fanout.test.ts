import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { AccessService, type ActiveSession } from './access';
import { Catalog, DEFAULT_CATALOG_PATH } from './catalog';
import { EventHub } from './events/hub';
import { DEFAULT_POLICIES_DIR, PolicyEngine } from './policy/engine';
import { SqliteAuditLog } from './store/audit-log';
import { openGatewayDatabase, type GatewayDatabase } from './store/database';
import { SqliteEntitlementVersions } from './store/entitlement-versions';
import { startGatewayHarness, type GatewayHarness } from './testing/gateway-harness';
import { SseReader } from './testing/device-client';
import { testPersonas, type TestPersona } from './testing/identity-provider';

const EDIT_FILE = 'zz-slice-edit.cedar';

/** A forbid of haiku-4 for everyone whose condition flips with `on` (the id stays, so no removal). */
function writeEdit(policiesDir: string, on: boolean): void {
  writeFileSync(
    join(policiesDir, EDIT_FILE),
    `@id("slice-haiku-suspended")
@reason("MODEL_SUSPENDED")
@title("Model suspended")
@message("{model} is suspended for the fan-out test.")
forbid (principal, action == Clearance::Action::"invoke", resource == Clearance::Model::"haiku-4")
when { ${on ? 'true' : 'false'} };
`,
  );
}

describe('fan-out through the real gateway', () => {
  let harness: GatewayHarness;
  beforeAll(async () => {
    harness = await startGatewayHarness({ reloadDebounceMs: 60_000 });
    writeEdit(harness.policiesDir, false);
    expect((await harness.gateway.reloadPolicies()).ok).toBe(true);
  });
  afterAll(async () => {
    await harness?.close();
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  const persona = (id: string): TestPersona => ({
    ...testPersonas.usResearcher,
    id,
    username: `${id}@clearance.example`,
  });

  it('recomputes only users with an open stream, once per user, and gives the others theirs on their next request', async () => {
    const listening = persona('fanout-listening');
    const quiet = persona('fanout-quiet');
    // Two devices of one user in the same state: one recompute, each stream told once.
    const laptop = await harness.signIn(listening);
    const desktop = await harness.signIn(listening);
    const other = await harness.signIn(quiet);
    const controller = new AbortController();
    const streams = await Promise.all(
      [laptop, desktop].map(async (client) => {
        const reader = new SseReader(await client.request('GET', '/v1/events', { signal: controller.signal }));
        expect((await reader.next())?.event).toBe('entitlements.changed');
        return reader;
      }),
    );
    const quietBefore = (await other.entitlements()).claims.ver as number;
    const applied = vi.spyOn(harness.gateway.access, 'applyChange');

    writeEdit(harness.policiesDir, true);
    expect((await harness.gateway.reloadPolicies()).ok).toBe(true);

    expect(applied).toHaveBeenCalledTimes(1);
    await expect(applied.mock.results[0]!.value).resolves.toEqual({ cut: 0, notified: 1, recomputed: 1 });
    for (const reader of streams) {
      const event = await reader.next();
      expect(event?.event).toBe('entitlements.changed');
    }
    // The user without a stream was not recomputed: their next document carries the change.
    const { claims } = await other.entitlements();
    expect(claims.ver).toBe(quietBefore + 1);
    const haiku = (claims.models as { id: string; status: string }[]).find((model) => model.id === 'haiku-4');
    expect(haiku?.status).not.toBe('allowed');
    controller.abort();
    writeEdit(harness.policiesDir, false);
    expect((await harness.gateway.reloadPolicies()).ok).toBe(true);
  });
});

describe('fan-out slices', () => {
  const USERS = 40;
  /** Four kinds of people and two device states, so several distinct model lists are in play. */
  const sessionOf = (index: number): ActiveSession => {
    const groups = [['research', 'us-persons'], ['research'], ['contractors'], ['research', 'us-persons']][index % 4]!;
    return {
      sessionId: `session-${index}`,
      userId: `user-${index}`,
      jkt: `jkt-${index}`,
      identity: { groups },
      principal: { groups, usPerson: groups.includes('us-persons'), verificationPending: false },
      device: {
        id: `device-${index}`,
        assurance: 'software',
        compliant: index % 3 !== 0,
        failedChecks: index % 3 !== 0 ? [] : ['firewall'],
      },
      expiresAt: Math.floor(Date.now() / 1000) + 600,
    };
  };
  let dir: string;
  let db: GatewayDatabase;
  let engine: PolicyEngine;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'clearance-slices-'));
    cpSync(DEFAULT_POLICIES_DIR, join(dir, 'policies'), { recursive: true });
    writeEdit(join(dir, 'policies'), false);
    engine = PolicyEngine.create({ policiesDir: join(dir, 'policies'), log: () => {} });
    db = openGatewayDatabase(join(dir, 'gateway.db'));
  });
  afterAll(async () => {
    await engine?.close();
    db?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('yield to the event loop between users, so a change to many subscribers never runs in one turn', async () => {
    const catalog = Catalog.fromFile(DEFAULT_CATALOG_PATH);
    const events = new EventHub();
    // A zero budget: every user is its own slice.
    const access = new AccessService(
      engine,
      () => catalog,
      new SqliteAuditLog(db),
      new SqliteEntitlementVersions(db),
      events,
      () => {},
      0,
    );
    let turn = 0;
    const notifiedAtTurn: number[] = [];
    const versionsSeen = new Map<string, number>();
    const sessions: ActiveSession[] = Array.from({ length: USERS }, (_, index) => sessionOf(index));
    for (const session of sessions) {
      access.track(session);
      await access.entitlements(session);
      events.subscribe(session.userId, session.jkt, {
        write: (text) => {
          if (!text.includes('entitlements.changed')) return;
          notifiedAtTurn.push(turn);
          versionsSeen.set(session.userId, (JSON.parse(/^data: (.*)$/m.exec(text)![1]!) as { ver: number }).ver);
        },
        close: () => {},
      });
    }
    notifiedAtTurn.length = 0;
    versionsSeen.clear();
    // One tracked session without a stream: never recomputed.
    access.track({ ...sessions[0]!, sessionId: 'quiet', userId: 'quiet-user', jkt: 'quiet-jkt' });

    writeEdit(join(dir, 'policies'), true);
    expect((await engine.reload()).ok).toBe(true);
    // Where each user's entitlements are computed (the CPU-heavy part): one turn of the event loop each.
    const computedAtTurn: number[] = [];
    const inside = access as unknown as { content: (session: ActiveSession, ...rest: unknown[]) => unknown };
    const content = inside.content.bind(access);
    inside.content = (session, ...rest) => {
      computedAtTurn.push(turn);
      return content(session, ...rest);
    };
    let counting = true;
    const count = () => {
      turn++;
      if (counting) setImmediate(count);
    };
    setImmediate(count);
    const result = await access.applyChange('test edit');
    counting = false;

    expect(result).toEqual({ cut: 0, notified: USERS, recomputed: USERS });
    // Spread over many turns of the event loop rather than all at once in one long run: each
    // user's computation, and each notification (with its socket write), in a turn of its own.
    expect(computedAtTurn).toHaveLength(USERS);
    expect(new Set(computedAtTurn).size).toBe(USERS);
    expect(notifiedAtTurn).toHaveLength(USERS);
    expect(new Set(notifiedAtTurn).size).toBe(USERS);
    expect(turn).toBeGreaterThanOrEqual(2 * USERS);
    // The fan-out computes each distinct model list once and reuses it; what it stored is exactly
    // what a request computes on its own, so a user's next document keeps the notified ver.
    const notifiedVer = (index: number) => versionsSeen.get(`user-${index}`);
    for (const [index, session] of sessions.entries()) {
      const { ver, models, device } = await access.entitlements(session);
      expect(ver).toBe(notifiedVer(index));
      expect(models.find((model) => model.id === 'haiku-4')?.status).not.toBe('allowed');
      // The stored fingerprint is still SHA-256 of the JSON of device and models, as before the
      // fan-out reused model lists: an upgraded gateway does not raise everyone's ver.
      const row = db.prepare('SELECT fingerprint FROM entitlement_versions WHERE user_id = ?').get(session.userId) as {
        fingerprint: string;
      };
      expect(row.fingerprint).toBe(createHash('sha256').update(JSON.stringify({ device, models })).digest('hex'));
    }
  });

  it("stores the next slice's versions only once the previous slice's are durable (one group commit in flight)", async () => {
    const catalog = Catalog.fromFile(DEFAULT_CATALOG_PATH);
    const events = new EventHub();
    const stored = new SqliteEntitlementVersions(db);
    let pending = 0;
    let most = 0;
    // Counts the version writes not yet durable, at the store's edge.
    const versions = {
      current: (userId: string) => stored.current(userId),
      versionFor: async (userId: string, fingerprint: string) => {
        pending++;
        most = Math.max(most, pending);
        try {
          return await stored.versionFor(userId, fingerprint);
        } finally {
          pending--;
        }
      },
    };
    // A zero budget: every user is a slice of its own.
    const access = new AccessService(
      engine,
      () => catalog,
      new SqliteAuditLog(db),
      versions,
      events,
      () => {},
      0,
    );
    for (let index = 0; index < 12; index++) {
      const session = { ...sessionOf(index), userId: `chain-user-${index}`, jkt: `chain-jkt-${index}` };
      access.track(session);
      events.subscribe(session.userId, session.jkt, { write: () => {}, close: () => {} });
    }
    expect(await access.applyChange('chained commits')).toMatchObject({ notified: 12, recomputed: 12 });
    expect(most).toBe(1);
  });

  it('notifies everyone it could recompute when the store fails for one user, then reports the failure', async () => {
    const catalog = Catalog.fromFile(DEFAULT_CATALOG_PATH);
    const events = new EventHub();
    const stored = new SqliteEntitlementVersions(db);
    // The store's edge: one user's write fails.
    const versions = {
      current: (userId: string) => stored.current(userId),
      versionFor: (userId: string, fingerprint: string) =>
        userId === 'store-user-3' ? Promise.reject(new Error('disk full')) : stored.versionFor(userId, fingerprint),
    };
    const access = new AccessService(
      engine,
      () => catalog,
      new SqliteAuditLog(db),
      versions,
      events,
      () => {},
    );
    const told: string[] = [];
    for (let index = 0; index < 6; index++) {
      const session = { ...sessionOf(index), userId: `store-user-${index}`, jkt: `store-jkt-${index}` };
      access.track(session);
      events.subscribe(session.userId, session.jkt, {
        write: (text) => {
          if (text.includes('entitlements.changed')) told.push(session.userId);
        },
        close: () => {},
      });
    }
    await expect(access.applyChange('store failure')).rejects.toThrow(
      /^1 user\(s\) could not be recomputed: disk full$/,
    );
    expect(told.sort()).toEqual(['store-user-0', 'store-user-1', 'store-user-2', 'store-user-4', 'store-user-5']);
  });
});
