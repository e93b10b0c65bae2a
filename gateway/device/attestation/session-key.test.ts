import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signWithDeviceKey, type JwsSigner } from '../../../main/device/jws';
import type { HardwareKeyHandle } from '../../../main/device/key';
import { TpmKeyProvider } from '../../../main/device/tpm/tpm2-tools';
import { NodeCommandRunner } from '../../../main/node/adapters';
import { certifySessionKey, createSessionKey } from '../../../main/session/session-key';
import { ProblemDetails } from '../../../shared/problem';
import { SESSION_KEY_TYP } from '../../../shared/session-key';
import { GatewayTestClient, SseReader, TestDevice } from '../../testing/device-client';
import { startGatewayHarness, type GatewayHarness } from '../../testing/gateway-harness';
import { testPersonas, type TestPersona } from '../../testing/identity-provider';
import { startSoftwareTpm, type SoftwareTpm } from '../../testing/swtpm';
import { attestWithTpm } from '../../testing/tpm-client';

/**
 * The session key (docs/protocol.md, "Session key") through the real gateway and a real swtpm: a
 * TPM-attested device key certifies a software key at session open; the token binds that key, and
 * the device stays the device key.
 */
let tpm: SoftwareTpm;
let harness: GatewayHarness;
let keyDir: string;
/** The TPM device key, and a second key of the same TPM that is never attested. */
let deviceKey: HardwareKeyHandle;
let otherTpmKey: HardwareKeyHandle;
let deviceJkt: string;
/** Refusal tests run as this person, who never gets a session here. */
const refused = testPersonas.fnResearcher;

async function openKey(name: string): Promise<HardwareKeyHandle> {
  const provider = new TpmKeyProvider({
    commands: new NodeCommandRunner(),
    folder: join(keyDir, name),
    tcti: tpm.tcti,
  });
  const handle = await provider.openOrCreate();
  if (!handle?.attestor) throw new Error('the TPM provider gave no attestable key');
  return handle;
}

beforeAll(async () => {
  keyDir = mkdtempSync(join(tmpdir(), 'clearance-session-key-'));
  tpm = await startSoftwareTpm();
  // Open enrolment: a session key must be refused by its own check, not because the policy wants a TPM.
  harness = await startGatewayHarness({
    deviceTrust: { enrolmentPolicy: 'open', tpmManufacturerRoots: [tpm.rootCaPem, tpm.issuerCaPem] },
  });
  deviceKey = await openKey('device');
  otherTpmKey = await openKey('other');
  deviceJkt = (await TestDevice.withSigner({ ...deviceKey.publicJwk }, () => Promise.reject(new Error('unused')))).jkt;
}, 120_000);
afterAll(async () => {
  await harness?.close();
  await tpm?.close();
  rmSync(keyDir, { recursive: true, force: true });
});

/**
 * A session request in the making: a fresh software session key (the client's `device`, so it signs the
 * DPoP proof and the posture report), a challenge, and the TPM's attestation of `attested` over it (none for null).
 */
async function prepare(persona: TestPersona, attested: HardwareKeyHandle | null = deviceKey) {
  const sessionKey = await TestDevice.create({ assurance: attested ? 'hardware' : 'software' });
  const client = new GatewayTestClient(harness.gateway.url, sessionKey);
  const idpToken = await harness.idp.mint(persona);
  const nonce = await client.challenge(idpToken);
  const attestation = attested
    ? await attestWithTpm(harness.gateway.url, idpToken, nonce, attested.attestor!)
    : undefined;
  const open = (certification: string) =>
    client.requestSession(
      idpToken,
      nonce,
      { assurance: attested ? 'hardware' : 'software' },
      { ...(attestation ? { attestation } : {}), session_key: certification },
    );
  return { sessionKey, client, idpToken, nonce, open };
}

/** Claims of a certification of `sessionJkt` over `nonce`, valid from now for 300 s, with `changes`. */
function claims(nonce: string, sessionJkt: string, changes: Record<string, unknown> = {}) {
  const iat = Math.floor(Date.now() / 1000);
  return { nonce, iat, exp: iat + 300, cnf: { jkt: sessionJkt }, ...changes };
}

async function expectRefused(response: Response, detail: RegExp, step = 'session-key'): Promise<void> {
  expect(response.status).toBe(403);
  const body = ProblemDetails.parse(await response.json());
  expect(body).toMatchObject({ reason: 'DEVICE_ATTESTATION_FAILED', step });
  expect(body.detail).toMatch(detail);
  // Nothing was enrolled for the person, under the device key or the session key; the refusal is audited.
  expect(await harness.gateway.devices.listForUser(refused.id)).toEqual([]);
  const audited = (await harness.gateway.audit.list({ limit: 10_000 }))
    .filter((record) => record.subject === refused.id && record.kind === 'enrolment')
    .at(-1);
  expect(audited?.data).toMatchObject({ outcome: 'refused', reason: 'DEVICE_ATTESTATION_FAILED', step });
}

describe('a session key certified by the TPM device key', () => {
  it('binds the token to the session key, keeps the TPM key as the device, and serves calls proved by the session key', async () => {
    const persona = testPersonas.usResearcher;
    const { sessionKey, client, nonce, open } = await prepare(persona);
    const certification = await certifySessionKey(deviceKey, { thumbprint: sessionKey.jkt }, nonce, Date.now());
    const session = await client.acceptSession(await open(certification));
    expect(session.device).toMatchObject({ assurance: 'hardware', compliant: true });
    expect(session.device.id).toMatch(/^tpm-ek:[0-9a-f]{64}$/);

    const token = decodeJwt(session.accessToken);
    expect(token.cnf).toEqual({ jkt: sessionKey.jkt });
    expect(token.device_jkt).toBe(deviceJkt);
    expect(token.exp).toBeLessThanOrEqual(decodeJwt(certification).exp!);
    // The device is the TPM key; the session key is never enrolled.
    expect(await harness.gateway.devices.find(persona.id, deviceJkt)).toMatchObject({ assurance: 'hardware' });
    expect(await harness.gateway.devices.find(persona.id, sessionKey.jkt)).toBeUndefined();
    const audited = (await harness.gateway.audit.list({ limit: 10_000 })).findLast(
      (record) => record.kind === 'session' && record.data.sessionId === session.sessionId,
    );
    expect(audited?.data).toMatchObject({ jkt: deviceJkt, sessionJkt: sessionKey.jkt, assurance: 'hardware' });

    const reply = await client.request('POST', '/v1/chat/completions', {
      body: { model: 'orion-2-secure', messages: [{ role: 'user', content: 'hello' }] },
    });
    expect(reply.status).toBe(200);
    await reply.text();
    // The entitlement document names the device key, as the app expects of its device.
    const document = await client.entitlements();
    expect(document.claims.cnf).toEqual({ jkt: deviceJkt });
  }, 60_000);

  it('a token takes proofs by its own key only: not the device key for a session-key token, nor the reverse', async () => {
    const persona = testPersonas.usResearcher;
    const { sessionKey, client, nonce, open } = await prepare(persona);
    await client.acceptSession(
      await open(await certifySessionKey(deviceKey, { thumbprint: sessionKey.jkt }, nonce, Date.now())),
    );
    const tpmDevice = await TestDevice.withSigner({ ...deviceKey.publicJwk }, (input) => deviceKey.sign(input));
    const byDeviceKey = new GatewayTestClient(harness.gateway.url, tpmDevice);
    byDeviceKey.accessToken = client.accessToken;
    const refusedByDevice = await byDeviceKey.request('GET', '/v1/entitlements');
    expect(refusedByDevice.status).toBe(401);
    expect(refusedByDevice.headers.get('www-authenticate')).toMatch(/^DPoP error="invalid_token"/);
    expect(ProblemDetails.parse(await refusedByDevice.json()).detail).toMatch(/cnf\.jkt/);

    // The same TPM key opens an attested session of its own (no session key): the TPM key signs its proofs.
    const idpToken = await harness.idp.mint(persona);
    const deviceNonce = await byDeviceKey.challenge(idpToken);
    const attestation = await attestWithTpm(harness.gateway.url, idpToken, deviceNonce, deviceKey.attestor!);
    const deviceSession = await byDeviceKey.acceptSession(
      await byDeviceKey.requestSession(idpToken, deviceNonce, { assurance: 'hardware' }, { attestation }),
    );
    expect(decodeJwt(deviceSession.accessToken).cnf).toEqual({ jkt: deviceJkt });
    const refusedBySessionKey = await client.request('GET', '/v1/entitlements', { token: deviceSession.accessToken });
    expect(refusedBySessionKey.status).toBe(401);
    expect(ProblemDetails.parse(await refusedBySessionKey.json()).detail).toMatch(/cnf\.jkt/);
    // Each token still works with its own key.
    expect((await client.request('GET', '/v1/models')).status).toBe(200);
    expect((await byDeviceKey.request('GET', '/v1/models')).status).toBe(200);
  }, 60_000);

  it('revoking the device key cuts the session-key stream at once and refuses its tokens', async () => {
    const persona = testPersonas.contractor;
    const { sessionKey, client, nonce, open } = await prepare(persona);
    await client.acceptSession(
      await open(await certifySessionKey(deviceKey, { thumbprint: sessionKey.jkt }, nonce, Date.now())),
    );
    const stream = new SseReader(await client.request('GET', '/v1/events'));
    expect((await stream.next())?.event).toBe('entitlements.changed');
    // Warm the token, key and enrolment caches with this token.
    for (let call = 0; call < 3; call++) expect((await client.request('GET', '/v1/models')).status).toBe(200);
    const cachedTokens = async () => {
      const metrics = await (await fetch(`${harness.gateway.url}/metrics`)).text();
      return Number(/clearance_cache_entries\{cache="session_tokens"\} (\d+)/.exec(metrics)?.[1]);
    };
    const cachedBefore = await cachedTokens();
    const revoked = await fetch(`${harness.gateway.url}/v1/admin/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${harness.gateway.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ user: persona.id, jkt: deviceJkt }),
    });
    expect(await revoked.json()).toEqual({ revoked: [deviceJkt] });
    // The session key's token left the token cache with the device key's revocation.
    expect(await cachedTokens()).toBe(cachedBefore - 1);
    const event = await stream.next();
    expect(event?.event).toBe('session.revoked');
    expect(JSON.parse(event!.data)).toMatchObject({ reason: 'device_revoked' });
    await stream.finished();
    const after = await client.request('GET', '/v1/models');
    expect(after.status).toBe(401);
    expect(ProblemDetails.parse(await after.json()).detail).toMatch(/revoked/);
    // A new session key certified by the revoked device key gets no session either.
    const again = await prepare(persona);
    const reopened = await again.open(
      await certifySessionKey(deviceKey, { thumbprint: again.sessionKey.jkt }, again.nonce, Date.now()),
    );
    expect(reopened.status).toBe(403);
    expect(ProblemDetails.parse(await reopened.json()).type).toMatch(/device-revoked/);
  }, 60_000);
});

describe('session-key certifications the gateway refuses', () => {
  it('one signed by another key than the device key it names', async () => {
    const { sessionKey, nonce, open } = await prepare(refused);
    const impostor = await createSessionKey();
    const forger: JwsSigner = { publicJwk: deviceKey.publicJwk, sign: (input) => impostor.sign(input) };
    const certification = await signWithDeviceKey(forger, SESSION_KEY_TYP, claims(nonce, sessionKey.jkt));
    await expectRefused(await open(certification), /signature does not verify/);
  }, 60_000);

  it('one by a TPM key other than the attested one', async () => {
    const { sessionKey, nonce, open } = await prepare(refused);
    const certification = await signWithDeviceKey(otherTpmKey, SESSION_KEY_TYP, claims(nonce, sessionKey.jkt));
    await expectRefused(await open(certification), /not the key that .*certified the session key/, 'device-key');
  }, 60_000);

  it('one over another nonce than the session request', async () => {
    const { sessionKey, client, idpToken, open } = await prepare(refused);
    const otherNonce = await client.challenge(idpToken);
    const certification = await certifySessionKey(deviceKey, { thumbprint: sessionKey.jkt }, otherNonce, Date.now());
    await expectRefused(await open(certification), /another nonce/);
  }, 60_000);

  it('one that has expired', async () => {
    const { sessionKey, nonce, open } = await prepare(refused);
    const now = Math.floor(Date.now() / 1000);
    const certification = await signWithDeviceKey(
      deviceKey,
      SESSION_KEY_TYP,
      claims(nonce, sessionKey.jkt, { iat: now - 100, exp: now - 10 }),
    );
    await expectRefused(await open(certification), /expired/);
  }, 60_000);

  it('one of another key than the one that signed the DPoP proof', async () => {
    const { nonce, open } = await prepare(refused);
    const elsewhere = await createSessionKey();
    const certification = await certifySessionKey(deviceKey, elsewhere, nonce, Date.now());
    await expectRefused(await open(certification), /another key than the one that signed the DPoP proof/);
  }, 60_000);

  it('one by a software device key, which no TPM attestation proves', async () => {
    const { sessionKey, nonce, open } = await prepare(refused, null);
    const softwareDevice = await createSessionKey();
    const certification = await certifySessionKey(softwareDevice, { thumbprint: sessionKey.jkt }, nonce, Date.now());
    await expectRefused(await open(certification), /only a device key verified as hardware/);
  });
});
