import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HardwareKeyHandle } from '../../../main/device/key';
import { TpmKeyProvider } from '../../../main/device/tpm/tpm2-tools';
import { NodeCommandRunner } from '../../../main/node/adapters';
import { ProblemDetails } from '../../../shared/problem';
import { GatewayTestClient, TestDevice } from '../../testing/device-client';
import { startGatewayHarness, type GatewayHarness } from '../../testing/gateway-harness';
import { testPersonas, type TestPersona } from '../../testing/identity-provider';
import { QuotaExceeded } from '../../limits/quotas';
import { startSoftwareTpm, type SoftwareTpm } from '../../testing/swtpm';
import { TrustBundle } from './certificate-chain';
import { InMemoryPendingActivations } from './pending-activations';
import { TpmAttestationVerifier } from './tpm-attestation';
import { attestWithTpm, requestCredential, requestCredentials } from '../../testing/tpm-client';

/**
 * An attacker who owns a TPM (a genuine EK certificate) sends TPM structures the gateway's readers
 * accept but cannot name: each must be a 403 `DEVICE_ATTESTATION_FAILED` with its step, never a 500.
 */
let tpm: SoftwareTpm;
let harness: GatewayHarness;
let keyDir: string;
let deviceKey: HardwareKeyHandle;
const persona = testPersonas.fnResearcher;

beforeAll(async () => {
  keyDir = mkdtempSync(join(tmpdir(), 'clearance-tpm-attack-'));
  tpm = await startSoftwareTpm();
  harness = await startGatewayHarness({
    deviceTrust: { enrolmentPolicy: 'tpm', tpmManufacturerRoots: [tpm.rootCaPem, tpm.issuerCaPem] },
  });
  const provider = new TpmKeyProvider({ commands: new NodeCommandRunner(), folder: keyDir, tcti: tpm.tcti });
  const handle = await provider.openOrCreate();
  if (!handle?.attestor) throw new Error('the TPM provider gave no attestable key');
  deviceKey = handle;
}, 120_000);
afterAll(async () => {
  await harness?.close();
  await tpm?.close();
  rmSync(keyDir, { recursive: true, force: true });
});

/** A TPM2B_PUBLIC (or bare TPMT_PUBLIC) with its nameAlg set to SHA-1 (0x0004). */
function withSha1Name(area: Uint8Array): Buffer {
  const bytes = Buffer.from(area);
  const sizePrefixed = bytes.readUInt16BE(0) === bytes.length - 2;
  bytes.writeUInt16BE(0x0004, sizePrefixed ? 4 : 2);
  return bytes;
}

async function expectAttestationRefusal(response: Response, step: string): Promise<void> {
  expect(response.status).toBe(403);
  const body = ProblemDetails.parse(await response.json());
  expect(body).toMatchObject({ reason: 'DEVICE_ATTESTATION_FAILED', step });
  expect(await harness.gateway.devices.listForUser(persona.id)).toEqual([]);
  expect(harness.logLines.filter((line) => line.includes('internal error'))).toEqual([]);
}

describe('TPM structures with a name algorithm other than SHA-256', () => {
  it('an attestation key with a SHA-1 name is refused at step format, not a 500', async () => {
    const endorsement = await deviceKey.attestor!.endorsement();
    const client = new GatewayTestClient(harness.gateway.url, await TestDevice.create());
    const idpToken = await harness.idp.mint(persona);
    const response = await requestCredential(harness.gateway.url, idpToken, await client.challenge(idpToken), {
      ekCertificate: endorsement.ekCertificate,
      attestationKeyPublic: withSha1Name(endorsement.attestationKeyPublic),
    });
    await expectAttestationRefusal(response, 'format');
  });

  it('a device public area with a SHA-1 name in a genuine attestation is refused, not a 500', async () => {
    const device = await TestDevice.withSigner({ ...deviceKey.publicJwk }, (input) => deviceKey.sign(input));
    const client = new GatewayTestClient(harness.gateway.url, device);
    const idpToken = await harness.idp.mint(persona);
    const nonce = await client.challenge(idpToken);
    const attestation = await attestWithTpm(harness.gateway.url, idpToken, nonce, deviceKey.attestor!);
    const forged = {
      ...attestation,
      device_public: withSha1Name(Buffer.from(attestation.device_public, 'base64url')).toString('base64url'),
    };
    const response = await client.requestSession(idpToken, nonce, { assurance: 'hardware' }, { attestation: forged });
    await expectAttestationRefusal(response, 'device-key');
  });
});

describe('pending credential activations', () => {
  it('one person cannot fill the activations in progress for everyone: past their own share they get 429, another person still gets a credential', async () => {
    const endorsement = await deviceKey.attestor!.endorsement();
    const mallory = testPersonas.contractor;
    const victim = testPersonas.usResearcher;
    const verifier = new TpmAttestationVerifier(
      TrustBundle.fromPem([tpm.rootCaPem, tpm.issuerCaPem], 'roots'),
      new InMemoryPendingActivations(15),
    );
    const body = (nonce: string) => ({
      nonce,
      ek_certificate: Buffer.from(endorsement.ekCertificate).toString('base64url'),
      ak_public: Buffer.from(endorsement.attestationKeyPublic).toString('base64url'),
    });
    const outcomes: string[] = [];
    for (let i = 0; i < 15; i++) {
      outcomes.push(
        await verifier.begin(mallory.id, body(randomBytes(32).toString('base64url'))).then(
          () => 'credential',
          (error: unknown) => (error instanceof QuotaExceeded ? `429 ${error.scope}` : `refused ${String(error)}`),
        ),
      );
    }
    // The victim's own attestation must not be refused because of Mallory's.
    const victims = await verifier.begin(victim.id, body(randomBytes(32).toString('base64url'))).then(
      () => 'credential',
      (error: unknown) => `refused: ${(error as Error).message}`,
    );
    expect(victims).toBe('credential');
    expect(outcomes.slice(0, 10)).toEqual(Array(10).fill('credential'));
    expect(outcomes.slice(10)).toEqual(Array(5).fill('429 user'));
  });

  it('through the gateway, the eleventh activation a person holds is a 429 with Retry-After', async () => {
    const endorsement = await deviceKey.attestor!.endorsement();
    const idpToken = await harness.idp.mint(testPersonas.contractor);
    const { statuses, last } = await requestCredentials([harness.gateway.url], idpToken, 11, endorsement);
    expect(statuses).toEqual([...Array(10).fill(200), 429]);
    expect(Number(last!.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});

describe('a TPM whose device IT retired', () => {
  /** Opens a session for `who` with a fresh device key made in the swtpm; the raw response. */
  async function enrolNewKey(who: TestPersona): Promise<{ response: Response; jkt: string }> {
    const provider = new TpmKeyProvider({
      commands: new NodeCommandRunner(),
      folder: mkdtempSync(join(keyDir, 'key-')),
      tcti: tpm.tcti,
    });
    const key = (await provider.openOrCreate())!;
    const device = await TestDevice.withSigner({ ...key.publicJwk }, (input) => key.sign(input));
    const client = new GatewayTestClient(harness.gateway.url, device);
    const idpToken = await harness.idp.mint(who);
    const nonce = await client.challenge(idpToken);
    const attestation = await attestWithTpm(harness.gateway.url, idpToken, nonce, key.attestor!);
    return {
      response: await client.requestSession(idpToken, nonce, { assurance: 'hardware' }, { attestation }),
      jkt: device.jkt,
    };
  }

  it('cannot come back for that person with a new key made in the same TPM', async () => {
    const who = testPersonas.pending;
    const first = await enrolNewKey(who);
    expect(first.response.status).toBe(200);
    const retire = await fetch(`${harness.gateway.url}/v1/admin/devices/retire`, {
      method: 'POST',
      headers: { authorization: `Bearer ${harness.gateway.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ user: who.id, jkt: first.jkt, actor: 'it@lab.example' }),
    });
    expect(retire.status).toBe(200);

    const again = await enrolNewKey(who);
    expect(again.response.status).toBe(403);
    expect(ProblemDetails.parse(await again.response.json())).toMatchObject({
      type: 'urn:clearance:problem:device-revoked',
      title: 'Device retired',
    });
    // The new key got no session and is not enrolled; the refusal is audited.
    expect(await harness.gateway.devices.find(who.id, again.jkt)).toBeUndefined();
    const audited = (await harness.gateway.audit.list({ limit: 10_000 }))
      .filter((record) => record.subject === who.id && record.kind === 'enrolment')
      .at(-1);
    expect(audited?.data).toMatchObject({ outcome: 'refused', reason: 'DEVICE_REVOKED', jkt: again.jkt });

    // Another person on the same laptop (its TPM) is not affected.
    const other = await enrolNewKey(testPersonas.usResearcher);
    expect(other.response.status).toBe(200);
  });
});
