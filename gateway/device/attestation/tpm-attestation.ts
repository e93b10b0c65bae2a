import { createPublicKey, randomBytes, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { QuotaExceeded } from '../../limits/quotas';
import { certificateFingerprint, TrustBundle, x509 } from './certificate-chain';
import { makeCredential } from './credential';
import { InMemoryPendingActivations, type PendingActivationStore } from './pending-activations';
import { AttestationError } from './refusal';
import {
  parseTpmAttest,
  parseTpmPublic,
  parseTpmSignature,
  publicKeyOf,
  TPM_ALG,
  TPM_GENERATED_VALUE,
  TPM_ST_ATTEST_CERTIFY,
  TPM_ST_ATTEST_CREATION,
  TPMA_OBJECT,
  tpmName,
  type TpmPublic,
} from './tpm-structures';

const Base64 = z
  .string()
  .min(1)
  .max(8192)
  .regex(/^[A-Za-z0-9+/_-]+={0,2}$/);

/** Body of `POST /v1/device/attestation`: the TPM's endorsement and its attestation key. */
export const AttestationStartBody = z.object({
  nonce: z.string().min(16).max(200),
  ek_certificate: Base64,
  ak_public: Base64,
});
export type AttestationStartBody = z.infer<typeof AttestationStartBody>;

/** `attestation` in the body of `POST /v1/session` after credential activation. */
export const TpmAttestationEvidence = z.object({
  format: z.literal('tpm2'),
  secret: Base64,
  device_public: Base64,
  certify_info: Base64,
  certify_signature: Base64,
});
export type TpmAttestationEvidence = z.infer<typeof TpmAttestationEvidence>;

/** What a verified attestation proved. */
export interface VerifiedTpmKey {
  /** SHA-256 of the EK certificate: the TPM's identity, stable across reinstalls. */
  readonly ekFingerprint: string;
  readonly ekSubject: string;
  readonly ekIssuer: string;
}

const REQUIRED_AK = TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin;
const REQUIRED_DEVICE_KEY = REQUIRED_AK | TPMA_OBJECT.sign;

function decode(value: string): Buffer {
  return Buffer.from(value.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

/**
 * TPM 2.0 key attestation at the gateway, as keylime and go-attestation do it.
 *
 * `begin` checks the EK certificate against the manufacturer roots and the attestation key's
 * public area, then makes a credential only that TPM can activate. `complete` checks the
 * activated secret, then the TPMS_ATTEST of TPM2_Certify: magic, type, the challenge nonce in
 * extraData, the certified name equal to the device key's name, the AK's signature, and the
 * device key's attributes and point (the DPoP key).
 */
export class TpmAttestationVerifier {
  constructor(
    private readonly roots: TrustBundle,
    /** Where credentials wait for activation: shared (Redis) when several instances serve one address. */
    private readonly pending: PendingActivationStore = new InMemoryPendingActivations(),
    private readonly lifetimeSeconds = 120,
    private readonly clock: () => number = () => Date.now() / 1000,
    /** Activations one person may hold at once (as their unused device challenges), so one cannot fill the store. */
    private readonly perUser = 10,
  ) {}

  /** Checks the endorsement and returns the credential (TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET). */
  async begin(
    userId: string,
    body: AttestationStartBody,
  ): Promise<{ readonly credentialBlob: Buffer; readonly encryptedSecret: Buffer }> {
    let ek: x509.X509Certificate;
    try {
      ek = new x509.X509Certificate(new Uint8Array(decode(body.ek_certificate)));
    } catch {
      throw new AttestationError('ek-certificate', 'the endorsement key certificate is not a DER certificate');
    }
    try {
      await this.roots.verify(ek);
    } catch (error) {
      throw new AttestationError(
        'ek-certificate',
        `the endorsement key certificate is not from a trusted TPM manufacturer: ${(error as Error).message}`,
      );
    }
    let ekKey: KeyObject;
    try {
      ekKey = createPublicKey({ key: Buffer.from(ek.publicKey.rawData), format: 'der', type: 'spki' });
    } catch {
      throw new AttestationError('ek-certificate', 'the endorsement key certificate holds no usable key');
    }
    if (ekKey.asymmetricKeyType !== 'rsa') {
      throw new AttestationError('ek-certificate', 'only RSA endorsement keys (NV index 0x01c00002) are supported');
    }
    const ak = readPublic(body.ak_public, 'format', 'attestation key');
    if (
      (ak.objectAttributes & (REQUIRED_AK | TPMA_OBJECT.restricted | TPMA_OBJECT.sign)) !==
      (REQUIRED_AK | TPMA_OBJECT.restricted | TPMA_OBJECT.sign)
    ) {
      throw new AttestationError(
        'format',
        'the attestation key must be a restricted signing key with fixedTPM, fixedParent and sensitiveDataOrigin',
      );
    }
    // Refused here, at the step the client can act on, rather than when the certification is checked.
    keyOf(ak, 'format', 'attestation key');
    const attestationKeyName = nameOf(ak, 'format', 'attestation key');
    const secret = randomBytes(32);
    const credential = makeCredential(ekKey, attestationKeyName, secret);
    const now = this.clock();
    const held = await this.pending.hold(
      body.nonce,
      {
        userId,
        secret: secret.toString('base64url'),
        attestationKeyPublic: body.ak_public,
        ekFingerprint: certificateFingerprint(ek),
        ekSubject: ek.subject,
        ekIssuer: ek.issuer,
        expiresAt: now + this.lifetimeSeconds,
      },
      { perUser: this.perUser, now },
    );
    if (!held.held && held.reason === 'user') {
      throw new QuotaExceeded(
        'user',
        `This account already has ${held.inProgress} TPM attestations in progress; finish one or wait for them to expire.`,
        held.retryAfterSeconds,
      );
    }
    if (!held.held) throw new AttestationError('format', 'too many attestations in progress');
    return credential;
  }

  /**
   * Checks the activated secret and the certification of the device key; the pending
   * activation is used up whatever the outcome.
   */
  async complete(
    userId: string,
    nonce: string,
    evidence: TpmAttestationEvidence,
    deviceJwk: { readonly x?: string; readonly y?: string; readonly crv?: string },
  ): Promise<VerifiedTpmKey> {
    const pending = await this.pending.take(userId, nonce);
    if (!pending || pending.userId !== userId || pending.expiresAt < this.clock()) {
      throw new AttestationError(
        'credential-activation',
        'no credential was issued for this challenge (call /v1/device/attestation first, within two minutes)',
      );
    }
    const secret = decode(evidence.secret);
    const sealed = Buffer.from(pending.secret, 'base64url');
    if (secret.length !== sealed.length || !timingSafeEqual(secret, sealed)) {
      throw new AttestationError(
        'credential-activation',
        'the activated credential does not match: the attestation key is not in the TPM that holds this endorsement key',
      );
    }
    const certifyInfo = decode(evidence.certify_info);
    let attest;
    try {
      attest = parseTpmAttest(certifyInfo);
    } catch (error) {
      throw new AttestationError('certification', `the certification cannot be read: ${(error as Error).message}`);
    }
    if (attest.magic !== TPM_GENERATED_VALUE) {
      throw new AttestationError('certification', 'the certification was not generated by a TPM (magic)');
    }
    if (attest.type !== TPM_ST_ATTEST_CREATION && attest.type !== TPM_ST_ATTEST_CERTIFY) {
      throw new AttestationError(
        'certification',
        'the attestation is not a TPM2_CertifyCreation or TPM2_Certify result (type)',
      );
    }
    const expectedNonce = decode(nonce);
    if (attest.extraData.length !== expectedNonce.length || !timingSafeEqual(attest.extraData, expectedNonce)) {
      throw new AttestationError('certification', 'the certification is not over this challenge’s nonce');
    }
    const signedBytes = certifyInfo.length - 2 === certifyInfo.readUInt16BE(0) ? certifyInfo.subarray(2) : certifyInfo;
    const attestationKey = keyOf(
      readPublic(pending.attestationKeyPublic, 'format', 'attestation key'),
      'format',
      'attestation key',
    );
    let signatureOk: boolean;
    try {
      const signature = parseTpmSignature(decode(evidence.certify_signature));
      signatureOk =
        signature.hashAlg === TPM_ALG.SHA256 &&
        verify(
          'sha256',
          signedBytes,
          // Stryker disable next-line ConditionalExpression: `true` is equivalent (Node applies dsaEncoding to DSA/ECDSA keys only, an RSA key verifies the same); `false` is killed by the ECC AK tests, but a disable cannot tell the two apart
          attestationKey.asymmetricKeyType === 'ec'
            ? { key: attestationKey, dsaEncoding: 'ieee-p1363' }
            : attestationKey,
          signature.signature,
        );
    } catch {
      signatureOk = false;
    }
    if (!signatureOk) {
      throw new AttestationError('certification', 'the certification is not signed by the activated attestation key');
    }
    const device = readPublic(evidence.device_public, 'device-key', 'device key');
    const deviceName = nameOf(device, 'device-key', 'device key');
    if (attest.name.length !== deviceName.length || !timingSafeEqual(attest.name, deviceName)) {
      throw new AttestationError('certification', 'the certification is of another key than the device key sent');
    }
    if ((device.objectAttributes & REQUIRED_DEVICE_KEY) !== REQUIRED_DEVICE_KEY) {
      throw new AttestationError(
        'device-key',
        'the device key must be a signing key with fixedTPM, fixedParent and sensitiveDataOrigin (created in and bound to this TPM)',
      );
    }
    if (device.objectAttributes & (TPMA_OBJECT.restricted | TPMA_OBJECT.decrypt)) {
      throw new AttestationError('device-key', 'the device key must be an unrestricted signing-only key');
    }
    if (!device.ecc || device.curve !== 0x0003) throw new AttestationError('device-key', 'the device key is not P-256');
    const x = Buffer.from(device.ecc.x).toString('base64url');
    const y = Buffer.from(device.ecc.y).toString('base64url');
    if (deviceJwk.crv !== 'P-256' || deviceJwk.x !== x || deviceJwk.y !== y) {
      throw new AttestationError(
        'device-key',
        'the attested device key is not the key that signed the DPoP proof or certified the session key',
      );
    }
    return { ekFingerprint: pending.ekFingerprint, ekSubject: pending.ekSubject, ekIssuer: pending.ekIssuer };
  }
}

function readPublic(value: string, step: 'format' | 'device-key', what: string): TpmPublic {
  try {
    return parseTpmPublic(decode(value));
  } catch (error) {
    throw new AttestationError(step, `the ${what}'s public area cannot be read: ${(error as Error).message}`);
  }
}

/** The TPM name (nameAlg ‖ H(TPMT_PUBLIC)); an unsupported name algorithm is the caller's fault, not a 500. */
function nameOf(area: TpmPublic, step: 'format' | 'device-key', what: string): Buffer {
  try {
    return Buffer.from(tpmName(area));
  } catch (error) {
    throw new AttestationError(step, `the ${what} has no usable name: ${(error as Error).message}`);
  }
}

function keyOf(area: TpmPublic, step: 'format' | 'device-key', what: string): KeyObject {
  try {
    return publicKeyOf(area);
  } catch (error) {
    throw new AttestationError(step, `the ${what} is not usable: ${(error as Error).message}`);
  }
}
