import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuthError } from '../../auth/errors';
import { ProblemError, sendProblem } from '../../http/problems';
import { SqliteAuditLog } from '../../store/audit-log';
import { openGatewayDatabase, type GatewayDatabase } from '../../store/database';
import { registerDeviceAdminRoutes } from './admin-routes';
import { parseEnrolmentPolicy } from './enrolment-policy';
import { SqliteEnrolmentStore, type EnrolmentFacts, type EnrolmentStore } from './enrolments';

/**
 * The device admin routes on a Fastify app that registers only them, with the real enrolment store
 * and audit log (in-memory SQLite), called with `inject`. The admin check is the gateway's own
 * rule (a bearer token compared whole), and every revocation the routes ask for is recorded.
 */
const ADMIN_TOKEN = 'admin-token-0123456789';
let db: GatewayDatabase;
let store: SqliteEnrolmentStore;
let audit: SqliteAuditLog;
let app: FastifyInstance;
let now: Date;
let revocations: [string, string, string][];
let revokeAnswer: boolean;

/** A Fastify app with only the device admin routes over `enrolments`, and the gateway's admin check. */
async function buildApp(enrolments: EnrolmentStore): Promise<FastifyInstance> {
  const made = Fastify();
  made.setErrorHandler(async (error, _request, reply) => {
    if (error instanceof ProblemError) return sendProblem(reply, error.problem);
    if (error instanceof AuthError) return reply.code(error.status).send({ error: error.error });
    throw error;
  });
  registerDeviceAdminRoutes(made, {
    requireAdmin: (request: FastifyRequest) => {
      if (request.headers.authorization !== `Bearer ${ADMIN_TOKEN}`) {
        throw new AuthError('invalid_token', 'Admin endpoints need "Authorization: Bearer <admin token>"', 'Bearer');
      }
    },
    policy: parseEnrolmentPolicy('approval'),
    enrolments,
    audit,
    revokeDevice: async (userId, jkt, actor) => {
      revocations.push([userId, jkt, actor]);
      return revokeAnswer;
    },
  });
  await made.ready();
  return made;
}

beforeEach(async () => {
  db = openGatewayDatabase(':memory:');
  now = new Date('2026-12-06T08:00:00.000Z');
  store = new SqliteEnrolmentStore(db, () => now);
  audit = new SqliteAuditLog(db, () => now);
  revocations = [];
  revokeAnswer = true;
  app = await buildApp(store);
});
afterEach(async () => {
  await app.close();
  db.close();
});

const later = (seconds: number) => {
  now = new Date(now.getTime() + seconds * 1000);
  return now.toISOString();
};

function facts(userId: string, jkt: string, extra: Partial<EnrolmentFacts> = {}): EnrolmentFacts {
  return { userId, jkt, deviceId: `device-${jkt}`, platform: 'linux', assurance: 'software', ...extra };
}

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const get = (url: string, headers: Record<string, string> = admin) => app.inject({ method: 'GET', url, headers });
const post = (url: string, payload: unknown, headers: Record<string, string> = admin) =>
  app.inject({ method: 'POST', url, headers, payload: payload as object });

const adminRecords = async () => (await audit.list()).filter((r) => r.kind === 'admin');

describe('device admin routes: the admin credential', () => {
  const wrong: Record<string, string>[] = [{}, { authorization: 'Bearer wrong' }, { authorization: ADMIN_TOKEN }];

  it('refuses listing without the admin token, and lists nothing', async () => {
    await store.upsert(facts('alice', 'jkt-1'), 'pending');
    for (const headers of wrong) {
      const response = await get('/v1/admin/devices', headers);
      expect(response.statusCode).toBe(401);
      expect(response.json()).toStrictEqual({ error: 'invalid_token' });
    }
  });

  it('refuses an approval without the admin token: the device stays pending, nothing is audited', async () => {
    await store.upsert(facts('alice', 'jkt-1'), 'pending');
    for (const headers of wrong) {
      const response = await post('/v1/admin/devices/approve', { user: 'alice', jkt: 'jkt-1', actor: 'eve' }, headers);
      expect(response.statusCode).toBe(401);
    }
    expect(await store.find('alice', 'jkt-1')).toMatchObject({ status: 'pending' });
    expect(await store.find('alice', 'jkt-1')).not.toHaveProperty('decidedBy');
    expect(await audit.list()).toEqual([]);
  });

  it('refuses a retirement without the admin token: the device stays approved, no session is revoked', async () => {
    await store.upsert(facts('alice', 'jkt-1'), 'approved');
    for (const headers of wrong) {
      const response = await post('/v1/admin/devices/retire', { user: 'alice', jkt: 'jkt-1', actor: 'eve' }, headers);
      expect(response.statusCode).toBe(401);
    }
    expect((await store.find('alice', 'jkt-1'))?.status).toBe('approved');
    expect(revocations).toEqual([]);
    expect(await audit.list()).toEqual([]);
  });
});

describe('GET /v1/admin/devices', () => {
  beforeEach(async () => {
    await store.upsert(facts('u-1', 'a', { username: 'alice@lab.example' }), 'pending');
    later(1);
    await store.upsert(facts('u-2', 'b', { username: 'bob@lab.example' }), 'approved');
    later(1);
    await store.upsert(facts('u-1', 'c'), 'approved');
  });
  const keys = async (url: string) => {
    const response = await get(url);
    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    const body = response.json<{ policy: string; devices: { jkt: string }[] }>();
    expect(body.policy).toBe('approval');
    return body.devices.map((d) => d.jkt);
  };

  it('lists every device with the policy, not stored by caches', async () => {
    expect(await keys('/v1/admin/devices')).toEqual(['a', 'b', 'c']);
    const body = (await get('/v1/admin/devices')).json<{ devices: unknown[] }>();
    expect(body.devices[0]).toStrictEqual({
      ...facts('u-1', 'a', { username: 'alice@lab.example' }),
      status: 'pending',
      requestedAt: '2026-12-06T08:00:00.000Z',
      lastSeenAt: '2026-12-06T08:00:00.000Z',
    });
  });

  it('filters by status, by user id or username, or both', async () => {
    expect(await keys('/v1/admin/devices?status=pending')).toEqual(['a']);
    expect(await keys('/v1/admin/devices?status=approved')).toEqual(['b', 'c']);
    expect(await keys('/v1/admin/devices?status=retired')).toEqual([]);
    expect(await keys('/v1/admin/devices?user=u-1')).toEqual(['a', 'c']);
    expect(await keys('/v1/admin/devices?user=bob@lab.example')).toEqual(['b']);
    expect(await keys('/v1/admin/devices?user=u-1&status=approved')).toEqual(['c']);
  });

  it('refuses a filter it does not know, with what to give', async () => {
    for (const query of ['status=revoked', 'status=', 'user=']) {
      const response = await get(`/v1/admin/devices?${query}`);
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({
        type: 'urn:clearance:problem:bad-request',
        status: 400,
        title: 'Invalid request',
        detail: 'Give ?status=pending|approved|retired and/or ?user=<id>',
      });
    }
  });
});

describe('POST /v1/admin/devices/approve', () => {
  it('approves a pending device, answers it, and audits who approved it and what it was', async () => {
    await store.upsert(facts('alice', 'jkt-1'), 'pending');
    const decidedAt = later(30);
    const response = await post('/v1/admin/devices/approve', { user: 'alice', jkt: 'jkt-1', actor: ' it-admin ' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    const device = {
      ...facts('alice', 'jkt-1'),
      status: 'approved',
      requestedAt: '2026-12-06T08:00:00.000Z',
      lastSeenAt: '2026-12-06T08:00:00.000Z',
      decidedAt,
      decidedBy: 'it-admin',
    };
    expect(response.json()).toStrictEqual({ device });
    expect(await store.find('alice', 'jkt-1')).toStrictEqual(device);
    const records = await adminRecords();
    expect(records).toHaveLength(1);
    expect(records[0]?.subject).toBe('alice');
    expect(records[0]?.data).toStrictEqual({
      action: 'devices.approve',
      jkt: 'jkt-1',
      actor: 'it-admin',
      deviceId: 'device-jkt-1',
      previous: 'pending',
    });
    expect(revocations).toEqual([]);
  });

  it('refuses a device that never asked to enrol, with 404, and audits nothing', async () => {
    await store.upsert(facts('alice', 'jkt-1'), 'pending');
    const response = await post('/v1/admin/devices/approve', { user: 'bob', jkt: 'jkt-1', actor: 'it-admin' });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toMatchObject({
      type: 'urn:clearance:problem:not-found',
      status: 404,
      title: 'Device not found',
      detail: 'No device jkt-1 has asked to enrol for bob.',
    });
    expect(await store.find('bob', 'jkt-1')).toBeUndefined();
    expect(await audit.list()).toEqual([]);
  });

  it('refuses to approve a retired device, with 409: it stays retired, nothing is audited', async () => {
    await store.upsert(facts('alice', 'jkt-1'), 'approved');
    await store.decide('alice', 'jkt-1', 'retired', 'first-admin');
    later(30);
    const response = await post('/v1/admin/devices/approve', { user: 'alice', jkt: 'jkt-1', actor: 'it-admin' });
    expect(response.statusCode).toBe(409);
    expect(response.json()).toMatchObject({
      type: 'urn:clearance:problem:device-revoked',
      status: 409,
      title: 'Device retired',
      detail: 'A retired device cannot be approved; it must enrol anew.',
    });
    expect(await store.find('alice', 'jkt-1')).toMatchObject({
      status: 'retired',
      decidedBy: 'first-admin',
      decidedAt: '2026-12-06T08:00:00.000Z',
    });
    expect(await audit.list()).toEqual([]);
  });

  /** The real store, with `after` run once a route has read the device (another call landing in between). */
  const between = (after: (user: string, jkt: string) => Promise<unknown>): EnrolmentStore => ({
    upsert: (facts, initial) => store.upsert(facts, initial),
    list: (filter) => store.list(filter),
    decide: (user, jkt, status, actor) => store.decide(user, jkt, status, actor),
    find: async (user, jkt) => {
      const found = await store.find(user, jkt);
      await after(user, jkt);
      return found;
    },
  });

  it('refuses, with 409, an approval that a retirement overtook: the device stays retired, nothing is audited', async () => {
    await store.upsert(facts('alice', 'jkt-1'), 'pending');
    const racing = await buildApp(between((user, jkt) => store.decide(user, jkt, 'retired', 'other-admin')));
    try {
      const response = await racing.inject({
        method: 'POST',
        url: '/v1/admin/devices/approve',
        headers: admin,
        payload: { user: 'alice', jkt: 'jkt-1', actor: 'it-admin' },
      });
      expect(response.statusCode).toBe(409);
      expect(response.json()).toMatchObject({
        type: 'urn:clearance:problem:device-revoked',
        detail: 'A retired device cannot be approved; it must enrol anew.',
      });
    } finally {
      await racing.close();
    }
    expect(await store.find('alice', 'jkt-1')).toMatchObject({ status: 'retired', decidedBy: 'other-admin' });
    expect(await audit.list()).toEqual([]);
  });

  it('answers 404 when the device is gone by the time of the decision, and audits nothing', async () => {
    await store.upsert(facts('alice', 'jkt-1'), 'pending');
    const racing = await buildApp(
      between(async (user, jkt) =>
        db.connection.prepare('DELETE FROM device_enrolments WHERE user_id = ? AND jkt = ?').run(user, jkt),
      ),
    );
    try {
      const response = await racing.inject({
        method: 'POST',
        url: '/v1/admin/devices/approve',
        headers: admin,
        payload: { user: 'alice', jkt: 'jkt-1', actor: 'it-admin' },
      });
      expect(response.statusCode).toBe(404);
      expect(response.json()).toMatchObject({ detail: 'No device jkt-1 has asked to enrol for alice.' });
    } finally {
      await racing.close();
    }
    expect(await audit.list()).toEqual([]);
  });

  it('approves an approved device again (recording the new actor), naming it was approved', async () => {
    await store.upsert(facts('alice', 'jkt-1'), 'approved');
    const response = await post('/v1/admin/devices/approve', { user: 'alice', jkt: 'jkt-1', actor: 'bob' });
    expect(response.statusCode).toBe(200);
    expect((await adminRecords())[0]?.data).toMatchObject({ previous: 'approved', actor: 'bob' });
  });
});

describe('POST /v1/admin/devices/retire', () => {
  it('retires the device, audits who did it, revokes its sessions and says whether any were', async () => {
    await store.upsert(facts('alice', 'jkt-1'), 'approved');
    const decidedAt = later(30);
    const response = await post('/v1/admin/devices/retire', { user: 'alice', jkt: 'jkt-1', actor: 'it-admin' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    const device = {
      ...facts('alice', 'jkt-1'),
      status: 'retired',
      requestedAt: '2026-12-06T08:00:00.000Z',
      lastSeenAt: '2026-12-06T08:00:00.000Z',
      decidedAt,
      decidedBy: 'it-admin',
    };
    expect(response.json()).toStrictEqual({ device, sessionsRevoked: true });
    expect(await store.find('alice', 'jkt-1')).toStrictEqual(device);
    expect(revocations).toEqual([['alice', 'jkt-1', 'it-admin']]);
    const records = await adminRecords();
    expect(records).toHaveLength(1);
    expect(records[0]?.subject).toBe('alice');
    expect(records[0]?.data).toStrictEqual({
      action: 'devices.retire',
      jkt: 'jkt-1',
      actor: 'it-admin',
      deviceId: 'device-jkt-1',
      previous: 'approved',
    });
  });

  it('answers that no session was revoked when the device had none', async () => {
    await store.upsert(facts('alice', 'jkt-1'), 'pending');
    revokeAnswer = false;
    const response = await post('/v1/admin/devices/retire', { user: 'alice', jkt: 'jkt-1', actor: 'it-admin' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ device: { status: 'retired' }, sessionsRevoked: false });
    expect((await adminRecords())[0]?.data).toMatchObject({ previous: 'pending' });
  });

  it('refuses a device that never asked to enrol, with 404: nothing retired, revoked or audited', async () => {
    await store.upsert(facts('alice', 'jkt-1'), 'approved');
    const response = await post('/v1/admin/devices/retire', { user: 'alice', jkt: 'jkt-2', actor: 'it-admin' });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toMatchObject({
      type: 'urn:clearance:problem:not-found',
      detail: 'No device jkt-2 has asked to enrol for alice.',
    });
    expect(await store.find('alice', 'jkt-2')).toBeUndefined();
    expect(revocations).toEqual([]);
    expect(await audit.list()).toEqual([]);
  });
});

describe('device admin decisions: the body', () => {
  const invalid: [string, unknown][] = [
    ['no actor', { user: 'alice', jkt: 'jkt-1' }],
    ['a blank actor', { user: 'alice', jkt: 'jkt-1', actor: '   ' }],
    ['an actor over 200 characters', { user: 'alice', jkt: 'jkt-1', actor: 'a'.repeat(201) }],
    ['an empty user', { user: '', jkt: 'jkt-1', actor: 'it-admin' }],
    ['an empty key', { user: 'alice', jkt: '', actor: 'it-admin' }],
    ['no body', undefined],
  ];

  it.each(invalid)('refuses %s with 400 for both decisions, and decides nothing', async (_name, body) => {
    await store.upsert(facts('alice', 'jkt-1'), 'pending');
    for (const url of ['/v1/admin/devices/approve', '/v1/admin/devices/retire']) {
      const response = await post(url, body);
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({
        type: 'urn:clearance:problem:bad-request',
        status: 400,
        title: 'Invalid request',
        detail: 'Body: {"user": "<id>", "jkt": "<thumbprint>", "actor": "<who is acting>"}',
      });
    }
    expect(await store.find('alice', 'jkt-1')).toMatchObject({ status: 'pending' });
    expect(await store.find('alice', 'jkt-1')).not.toHaveProperty('decidedBy');
    expect(revocations).toEqual([]);
    expect(await audit.list()).toEqual([]);
  });

  it('takes an actor of 200 characters', async () => {
    await store.upsert(facts('alice', 'jkt-1'), 'pending');
    const actor = 'a'.repeat(200);
    const response = await post('/v1/admin/devices/approve', { user: 'alice', jkt: 'jkt-1', actor });
    expect(response.statusCode).toBe(200);
    expect((await store.find('alice', 'jkt-1'))?.decidedBy).toBe(actor);
  });
});
