import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProblemDetails } from '../../../shared/problem';
import { connectSharedState, type SharedState } from '../../cluster';
import { DEFAULT_POLICIES_DIR } from '../../policy/engine';
import { startGateway, type RunningGateway } from '../../server';
import { GatewayTestClient, TestDevice } from '../../testing/device-client';
import { startTestIdentityProvider, testPersonas, type TestIdentityProvider } from '../../testing/identity-provider';
import { startTestPostgres, startTestRedis, type TestService } from '../../testing/services';

/**
 * Two gateway instances with the approval policy over one real PostgreSQL (and Redis): the
 * enrolment decisions one instance makes hold at the other.
 */
let postgres: TestService;
let redis: TestService;
let idp: TestIdentityProvider;
let dir: string;
const instances: { gateway: RunningGateway; shared: SharedState }[] = [];
const persona = testPersonas.usResearcher;

async function startInstance(name: string) {
  const shared = await connectSharedState({ postgresUrl: postgres.url, redisUrl: redis.url });
  const policiesDir = join(dir, `${name}-policies`);
  cpSync(DEFAULT_POLICIES_DIR, policiesDir, { recursive: true });
  const gateway = await startGateway({
    stateDir: join(dir, name),
    policiesDir,
    identityProvider: { issuer: idp.issuer, jwksUri: idp.jwksUri, audience: idp.audience, caCertPem: idp.caCertPem },
    discovery: {
      identityProvider: { authority: idp.issuer, clientId: 'clearance-desktop', scopes: ['openid'], protocol: 'OIDC' },
    },
    deviceTrust: { enrolmentPolicy: 'approval' },
    processMetrics: false,
    log: () => {},
    ...shared.options,
  });
  instances.push({ gateway, shared });
  return gateway;
}

let a: RunningGateway;
let b: RunningGateway;

beforeAll(async () => {
  [postgres, redis, idp] = await Promise.all([startTestPostgres(), startTestRedis(), startTestIdentityProvider()]);
  dir = mkdtempSync(join(tmpdir(), 'clearance-enrolments-pg-'));
  a = await startInstance('a');
  b = await startInstance('b');
}, 120_000);

afterAll(async () => {
  for (const { gateway, shared } of instances) {
    await gateway.close();
    await shared.close();
  }
  await idp?.close();
  await Promise.all([postgres?.stop(), redis?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

function admin(gateway: RunningGateway, path: string, body?: unknown) {
  return fetch(`${gateway.url}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: {
      authorization: `Bearer ${gateway.adminToken}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function askAt(gateway: RunningGateway, client: GatewayTestClient) {
  const token = await idp.mint(persona);
  return client.requestSession(token, await client.challenge(token));
}

describe('device enrolments in PostgreSQL, shared by every instance', () => {
  it('a device pending at one instance is listed, approved and retired at the other, and each decision holds at the first', async () => {
    const client = new GatewayTestClient(a.url, await TestDevice.create());
    const pending = await askAt(a, client);
    expect(pending.status).toBe(403);
    expect(ProblemDetails.parse(await pending.json()).reason).toBe('DEVICE_ENROLMENT_PENDING');

    const listed = (await (await admin(b, `/v1/admin/devices?status=pending&user=${persona.id}`)).json()) as {
      devices: { jkt: string; status: string }[];
    };
    expect(listed.devices).toContainEqual(expect.objectContaining({ jkt: client.device.jkt, status: 'pending' }));

    const approved = await admin(b, '/v1/admin/devices/approve', {
      user: persona.id,
      jkt: client.device.jkt,
      actor: 'it-admin@lab.example',
    });
    expect(approved.status).toBe(200);
    const session = await askAt(a, client);
    expect(session.status).toBe(200);

    const retired = await admin(b, '/v1/admin/devices/retire', {
      user: persona.id,
      jkt: client.device.jkt,
      actor: 'it-admin@lab.example',
    });
    expect(retired.status).toBe(200);
    const refused = await askAt(a, client);
    expect(refused.status).toBe(403);
    expect(ProblemDetails.parse(await refused.json()).type).toContain('device-revoked');
  }, 60_000);
});
