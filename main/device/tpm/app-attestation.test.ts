import { randomUUID } from 'node:crypto';
import { decodeJwt } from 'jose';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayHarness, type GatewayHarness } from '../../../gateway/testing/gateway-harness';
import { testPersonas } from '../../../gateway/testing/identity-provider';
import { startSoftwareTpm, type SoftwareTpm } from '../../../gateway/testing/swtpm';
import { DiscoveryDocument } from '../../../shared/discovery';
import { NodeCommandRunner, MemorySecretStore } from '../../node/adapters';
import type { CommandRunner } from '../../platform';
import { SseReader } from '../../../gateway/testing/device-client';
import { GatewaySessionError } from '../../session/errors';
import { GatewaySession } from '../../session/gateway-session';
import { compliantLinuxDevice, createRecordedPostureService } from '../fixtures/devices';
import { hardwareKeyProviderFor } from '../hardware';
import { DeviceKeyStore } from '../key';

let trusted: SoftwareTpm;
let untrusted: SoftwareTpm;
/** A gateway whose enrolment policy requires TPM attestation and that trusts `trusted`'s manufacturer. */
let tpmGateway: GatewayHarness;
/** A gateway that trusts no TPM manufacturer (open enrolment). */
let plainGateway: GatewayHarness;
let folder: string;
const persona = testPersonas.usResearcher;

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'clearance-app-tpm-'));
  [trusted, untrusted] = await Promise.all([startSoftwareTpm(), startSoftwareTpm()]);
  tpmGateway = await startGatewayHarness({
    deviceTrust: { enrolmentPolicy: 'tpm', tpmManufacturerRoots: [trusted.rootCaPem, trusted.issuerCaPem] },
  });
  plainGateway = await startGatewayHarness();
}, 120_000);

afterAll(async () => {
  await Promise.all([tpmGateway?.close(), plainGateway?.close()]);
  await Promise.all([trusted?.close(), untrusted?.close()]);
  await rm(folder, { recursive: true, force: true });
});

/**
 * The app's own chain, as AccessFlow builds it: the key store with the provider the composition root
 * picks (a TPM, here through a TCTI), and the gateway session with the endpoints discovery names.
 */
async function connect(harness: GatewayHarness, tpm: SoftwareTpm) {
  const userData = join(folder, randomUUID());
  const logged: string[] = [];
  // Every tpm2-tools process the key store starts, by tool.
  const tpmCommands: string[] = [];
  const node = new NodeCommandRunner();
  const commands: CommandRunner = {
    run: (command, args, options) => {
      tpmCommands.push(command);
      return node.run(command, args, options);
    },
  };
  const signatures = () => tpmCommands.filter((command) => command === 'tpm2_sign').length;
  const keys = new DeviceKeyStore({
    paths: { userData, logs: userData },
    secrets: new MemorySecretStore(),
    hardware: hardwareKeyProviderFor({
      platform: 'linux',
      commands,
      userData,
      tcti: tpm.tcti,
    }),
    log: (message) => logged.push(message),
  });
  const discovery = DiscoveryDocument.parse(await (await fetch(`${harness.gateway.url}/.well-known/clearance`)).json());
  const requests: { path: string; status: number; authorization?: string }[] = [];
  const posture = createRecordedPostureService(compliantLinuxDevice);
  const session = new GatewaySession({
    gatewayUrl: harness.gateway.url,
    http: async (input, init) => {
      const response = await fetch(input, init);
      const authorization = new Headers(init?.headers).get('authorization') ?? undefined;
      requests.push({
        path: new URL(String(input)).pathname,
        status: response.status,
        ...(authorization ? { authorization } : {}),
      });
      return response;
    },
    clock: { now: () => Date.now() },
    deviceKey: () => keys.load(),
    posture: () => posture.check(),
    getIdpAccessToken: () => harness.idp.mint(persona),
    appVersion: '0.1.0',
    platform: 'linux',
    endpoints: {
      deviceChallenge: discovery.endpoints.device_challenge,
      session: discovery.endpoints.session,
      ...(discovery.endpoints.device_attestation ? { deviceAttestation: discovery.endpoints.device_attestation } : {}),
    },
    log: (message) => logged.push(message),
  });
  return { keys, session, requests, logged, discovery, signatures };
}

async function chat(session: GatewaySession, model: string): Promise<Response> {
  return session.fetch('/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hello' }] }),
  });
}

describe('the app attests its TPM key through the real gateway', () => {
  it('opens a hardware session keyed by the EK certificate, and Orion 2 Secure answers 200', async () => {
    const { keys, session, requests, signatures } = await connect(tpmGateway, trusted);
    const state = await session.ensureSession();
    const key = await keys.load();
    expect(key.assurance).toBe('hardware');
    expect(key.attestor).toBeDefined();
    expect(state.deviceVerdict).toMatchObject({ assurance: 'hardware', compliant: true });
    expect(state.deviceVerdict?.id).toMatch(/^tpm-ek:[0-9a-f]{64}$/);
    expect(requests.map((r) => `${r.path} ${r.status}`)).toEqual([
      '/v1/device/challenge 200',
      '/v1/device/attestation 200',
      '/v1/session 200',
    ]);
    expect(await tpmGateway.gateway.devices.find(persona.id, key.thumbprint)).toMatchObject({
      assurance: 'hardware',
      deviceId: state.deviceVerdict?.id,
    });

    // Opening the session cost one TPM signature: the certification of the session key.
    expect(signatures()).toBe(1);

    // Later calls are signed by the session key: the hardware-only model answers, the entitlement
    // document and the event stream are served, and the TPM is not used for any of them.
    const reply = await chat(session, 'orion-2-secure');
    expect(reply.status).toBe(200);
    await reply.text();
    expect((await session.fetch('/v1/entitlements')).status).toBe(200);
    const streaming = new AbortController();
    const events = new SseReader(await session.fetch('/v1/events', { signal: streaming.signal }));
    expect((await events.next())?.event).toBe('entitlements.changed');
    streaming.abort();
    expect(signatures()).toBe(1);
    const bound = (path: string) => {
      const authorization = requests.findLast((r) => r.path === path)?.authorization ?? '';
      return decodeJwt(authorization.replace(/^DPoP /, ''));
    };
    const token = bound('/v1/chat/completions');
    expect(token.cnf).not.toEqual({ jkt: key.thumbprint });
    expect(token.device_jkt).toBe(key.thumbprint);

    // A new session (as on expiry) attests again and costs one more TPM signature, for a new session key.
    await session.reattest();
    expect(signatures()).toBe(2);
    expect((await session.fetch('/v1/models')).status).toBe(200);
    expect(signatures()).toBe(2);
    expect(bound('/v1/models').cnf).not.toEqual(token.cnf);
  }, 60_000);

  it('a TPM from an untrusted manufacturer is refused at the EK certificate, and the device is not enrolled', async () => {
    const { keys, session, requests, logged } = await connect(tpmGateway, untrusted);
    const error = (await session.ensureSession().catch((e: unknown) => e)) as GatewaySessionError;
    expect(error).toBeInstanceOf(GatewaySessionError);
    expect(error.code).toBe('DEVICE_BLOCKED');
    expect(error.details.reason).toBe('DEVICE_ATTESTATION_FAILED');
    expect(error.details.status).toBe(403);
    // The attestation step's own refusal, not only "no attestation" from the session request.
    expect(requests.map((r) => `${r.path} ${r.status}`)).toEqual([
      '/v1/device/challenge 200',
      '/v1/device/attestation 403',
      '/v1/session 403',
    ]);
    expect(logged.some((line) => line.includes('TPM key attestation failed'))).toBe(true);
    expect(await tpmGateway.gateway.devices.find(persona.id, (await keys.load()).thumbprint)).toBeUndefined();
  }, 60_000);

  it('at a gateway that trusts no TPM, the same key claims only software and a hardware-only model is refused', async () => {
    const { keys, session, requests, discovery } = await connect(plainGateway, trusted);
    expect(discovery.endpoints.device_attestation).toBeUndefined();
    const state = await session.ensureSession();
    expect((await keys.load()).assurance).toBe('hardware');
    // It does not claim what the gateway cannot verify (a bare hardware claim is refused).
    expect(state.deviceVerdict).toMatchObject({ assurance: 'software', compliant: true });
    expect(requests.some((r) => r.path === '/v1/device/attestation')).toBe(false);
    const refused = await chat(session, 'orion-2-secure');
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ reason: 'DEVICE_ASSURANCE_TOO_LOW' });
  }, 60_000);
});
