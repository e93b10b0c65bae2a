import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayHarness, type GatewayHarness } from '../../gateway/testing/gateway-harness';
import { testPersonas } from '../../gateway/testing/identity-provider';
import {
  compliantLinuxDevice,
  createRecordedPostureService,
  noncompliantLinuxDevice,
  type RecordedDevice,
} from '../device/fixtures/devices';
import { DeviceKeyStore } from '../device/key';
import { MemorySecretStore } from '../node/adapters';
import type { HttpClient } from '../platform';
import { accessTokenHash, dpopHtu } from './dpop';
import { GatewaySessionError } from './errors';
import { GatewaySession } from './gateway-session';
import { generateTestDeviceKey } from './testing';
import { signWithDeviceKey } from '../device/jws';

/** Every request the session sends, as the gateway receives it. */
interface Exchange {
  readonly method: string;
  readonly path: string;
  readonly authorization: string;
  readonly status: number;
  readonly wwwAuthenticate: string | null;
}

let harness: GatewayHarness;
let folder: string;

beforeAll(async () => {
  harness = await startGatewayHarness({ dpop: { requireNonce: true } });
  folder = await mkdtemp(join(tmpdir(), 'clearance-session-it-'));
});

afterAll(async () => {
  await harness?.close();
  await rm(folder, { recursive: true, force: true });
});

async function connect(
  device: RecordedDevice,
  persona: (typeof testPersonas)[keyof typeof testPersonas] = testPersonas.usResearcher,
) {
  const keys = new DeviceKeyStore({
    paths: { userData: join(folder, randomUUID()), logs: folder },
    secrets: new MemorySecretStore(),
    log: () => undefined,
  });
  const exchanges: Exchange[] = [];
  const http: HttpClient = async (input, init) => {
    const response = await fetch(input, init);
    const url = new URL(String(input));
    exchanges.push({
      method: init?.method ?? 'GET',
      path: url.pathname,
      authorization: new Headers(init?.headers).get('authorization') ?? '',
      status: response.status,
      wwwAuthenticate: response.headers.get('www-authenticate'),
    });
    return response;
  };
  const posture = createRecordedPostureService(device);
  const session = new GatewaySession({
    gatewayUrl: harness.gateway.url,
    http,
    clock: { now: () => Date.now() },
    deviceKey: () => keys.load(),
    posture: () => posture.check(),
    getIdpAccessToken: () => harness.idp.mint(persona),
    appVersion: '0.1.0',
    platform: device.platform,
  });
  return { session, keys, exchanges };
}

describe('GatewaySession against the real gateway (gateway/server.ts startGateway)', () => {
  it('attests a compliant device, gets a token bound to its key, and calls DPoP endpoints with server nonces', async () => {
    const { session, keys, exchanges } = await connect(compliantLinuxDevice);
    const state = await session.ensureSession();
    const key = await keys.load();
    expect(state.deviceVerdict).toMatchObject({
      id: key.thumbprint,
      assurance: 'software',
      compliant: true,
      failedChecks: [],
    });
    const models = await session.fetch('/v1/models');
    expect(models.status).toBe(200);
    const ids = ((await models.json()) as { data: { id: string }[] }).data.map((m) => m.id);
    expect(ids).toContain('mythos-5');
    const entitlements = await session.fetch('/v1/entitlements');
    expect(entitlements.status).toBe(200);
    const document = decodeJwt(await entitlements.text());
    expect(document.cnf).toEqual({ jkt: key.thumbprint });
    const token = exchanges.find((e) => e.path === '/v1/models')!.authorization.replace(/^DPoP /, '');
    expect(decodeJwt(token).cnf).toEqual({ jkt: key.thumbprint });
    expect(exchanges.filter((e) => e.status >= 400)).toEqual([]);
  });

  it('attests the recorded non-compliant device: the gateway names the failed checks and refuses a restricted model', async () => {
    const { session } = await connect(noncompliantLinuxDevice);
    const state = await session.ensureSession();
    expect(state.deviceVerdict).toMatchObject({ compliant: false, failedChecks: ['disk-encryption', 'firewall'] });
    const denied = await session.fetch('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mythos-5', messages: [{ role: 'user', content: 'hello' }] }),
    });
    expect(denied.status).toBe(403);
    expect(await denied.json()).toMatchObject({ reason: 'DEVICE_NOT_COMPLIANT' });
    const ids = ((await (await session.fetch('/v1/models')).json()) as { data: { id: string }[] }).data.map(
      (m) => m.id,
    );
    expect(ids).not.toContain('mythos-5');
    expect(ids).toContain('haiku-4');
  });

  it('the gateway refuses the session token replayed with another device key', async () => {
    const { session, exchanges } = await connect(compliantLinuxDevice);
    await session.fetch('/v1/models');
    const token = exchanges.find((e) => e.path === '/v1/models')!.authorization.replace(/^DPoP /, '');
    const thief = await generateTestDeviceKey();
    const url = `${harness.gateway.url}/v1/models`;
    const nonce = (await fetch(`${harness.gateway.url}/.well-known/clearance`)).headers.get('dpop-nonce') ?? undefined;
    const proof = await signWithDeviceKey(thief, 'dpop+jwt', {
      jti: randomUUID(),
      htm: 'GET',
      htu: dpopHtu(url),
      iat: Math.floor(Date.now() / 1000),
      ath: accessTokenHash(token),
      ...(nonce ? { nonce } : {}),
    });
    const response = await fetch(url, { headers: { Authorization: `DPoP ${token}`, DPoP: proof } });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toContain('invalid_token');
  });

  it('after IT revokes the device, re-attestation is refused with DEVICE_BLOCKED', async () => {
    const { session, keys } = await connect(compliantLinuxDevice, testPersonas.fnResearcher);
    await session.fetch('/v1/models');
    expect(await harness.gateway.revokeDevice(testPersonas.fnResearcher.id, (await keys.load()).thumbprint)).toBe(true);
    const error = (await session.reattest().catch((e: unknown) => e)) as GatewaySessionError;
    expect(error).toBeInstanceOf(GatewaySessionError);
    expect(error.code).toBe('DEVICE_BLOCKED');
    expect(error.message).toContain('revoked');
  });
});

describe('GatewaySession against the real gateway when its DPoP nonce has moved on', () => {
  let shortNonces: GatewayHarness;
  beforeAll(async () => {
    shortNonces = await startGatewayHarness({ dpop: { requireNonce: true, nonceLifetimeSeconds: 1 } });
  });
  afterAll(async () => {
    await shortNonces?.close();
  });

  it('retries once with the nonce from the 401 use_dpop_nonce and succeeds', async () => {
    const exchanges: { path: string; status: number; challenge: string | null }[] = [];
    const keys = new DeviceKeyStore({
      paths: { userData: join(folder, randomUUID()), logs: folder },
      secrets: new MemorySecretStore(),
      log: () => undefined,
    });
    const posture = createRecordedPostureService(compliantLinuxDevice);
    const session = new GatewaySession({
      gatewayUrl: shortNonces.gateway.url,
      http: async (input, init) => {
        const response = await fetch(input, init);
        exchanges.push({
          path: new URL(String(input)).pathname,
          status: response.status,
          challenge: response.headers.get('www-authenticate'),
        });
        return response;
      },
      clock: { now: () => Date.now() },
      deviceKey: () => keys.load(),
      posture: () => posture.check(),
      getIdpAccessToken: () => shortNonces.idp.mint(testPersonas.usResearcher),
      appVersion: '0.1.0',
      platform: 'linux',
    });
    expect((await session.fetch('/v1/models')).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 2100));
    expect((await session.fetch('/v1/models')).status).toBe(200);
    const refused = exchanges.filter((e) => e.status === 401);
    expect(refused).toHaveLength(1);
    expect(refused[0]?.challenge).toContain('use_dpop_nonce');
    expect(exchanges.at(-1)).toMatchObject({ path: '/v1/models', status: 200 });
  });
});
