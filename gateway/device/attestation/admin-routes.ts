import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { problem, ProblemError } from '../../http/problems';
import type { AuditLog } from '../../store/audit-log';
import type { EnrolmentPolicy } from './enrolment-policy';
import type { EnrolmentStore } from './enrolments';

/** What the device admin routes need from the gateway. */
export interface DeviceAdminDependencies {
  readonly requireAdmin: (request: FastifyRequest) => void;
  readonly policy: EnrolmentPolicy;
  readonly enrolments: EnrolmentStore;
  readonly audit: AuditLog;
  /** Revokes the key in the device registry and cuts its sessions (as `/v1/admin/revoke`). */
  readonly revokeDevice: (userId: string, jkt: string, actor: string) => Promise<boolean>;
}

const Decision = z.object({
  user: z.string().min(1),
  jkt: z.string().min(1),
  /** The person acting, recorded in the audit log (the admin token itself names nobody). */
  actor: z.string().trim().min(1).max(200),
});

/**
 * `GET /v1/admin/devices`, `POST /v1/admin/devices/approve` and `POST /v1/admin/devices/retire`.
 *
 * Every approval and retirement is audited with the actor who made it.
 */
export function registerDeviceAdminRoutes(app: FastifyInstance, deps: DeviceAdminDependencies): void {
  app.get('/v1/admin/devices', async (request, reply) => {
    deps.requireAdmin(request);
    const query = z
      .object({ status: z.enum(['pending', 'approved', 'retired']).optional(), user: z.string().min(1).optional() })
      .safeParse(request.query);
    if (!query.success) {
      throw new ProblemError(
        problem('bad-request', 400, 'Invalid request', 'Give ?status=pending|approved|retired and/or ?user=<id>'),
      );
    }
    const devices = await deps.enrolments.list({ status: query.data.status, userId: query.data.user });
    return reply.header('cache-control', 'no-store').send({ policy: deps.policy.name, devices });
  });

  const decision = (request: FastifyRequest) => {
    const body = Decision.safeParse(request.body);
    if (!body.success) {
      throw new ProblemError(
        problem(
          'bad-request',
          400,
          'Invalid request',
          'Body: {"user": "<id>", "jkt": "<thumbprint>", "actor": "<who is acting>"}',
        ),
      );
    }
    return body.data;
  };
  const unknownDevice = (user: string, jkt: string) =>
    new ProblemError(problem('not-found', 404, 'Device not found', `No device ${jkt} has asked to enrol for ${user}.`));

  app.post('/v1/admin/devices/approve', async (request, reply) => {
    deps.requireAdmin(request);
    const { user, jkt, actor } = decision(request);
    const existing = await deps.enrolments.find(user, jkt);
    if (!existing) throw unknownDevice(user, jkt);
    // The store never approves a retired device, also one another call retired since `find` above.
    const record = await deps.enrolments.decide(user, jkt, 'approved', actor);
    if (!record) throw unknownDevice(user, jkt);
    if (record.status === 'retired') {
      throw new ProblemError(
        problem('device-revoked', 409, 'Device retired', 'A retired device cannot be approved; it must enrol anew.'),
      );
    }
    await deps.audit.append({
      kind: 'admin',
      subject: user,
      data: { action: 'devices.approve', jkt, actor, deviceId: existing.deviceId, previous: existing.status },
    });
    return reply.header('cache-control', 'no-store').send({ device: record });
  });

  app.post('/v1/admin/devices/retire', async (request, reply) => {
    deps.requireAdmin(request);
    const { user, jkt, actor } = decision(request);
    const existing = await deps.enrolments.find(user, jkt);
    if (!existing) throw unknownDevice(user, jkt);
    const record = await deps.enrolments.decide(user, jkt, 'retired', actor);
    await deps.audit.append({
      kind: 'admin',
      subject: user,
      data: { action: 'devices.retire', jkt, actor, deviceId: existing.deviceId, previous: existing.status },
    });
    const revoked = await deps.revokeDevice(user, jkt, actor);
    return reply.header('cache-control', 'no-store').send({ device: record, sessionsRevoked: revoked });
  });
}
