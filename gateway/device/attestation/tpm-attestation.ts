import { createPublicKey, randomBytes, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { QuotaExceeded } from '../../limits/quotas';
import { certificateFingerprint, TrustBundle, x509 } from './certificate-chain';
import { makeCredential } from './credential';
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

interface PendingActivation {
  readonly userId: string;
  readonly secret: Buffer;
  readonly attestationKey: KeyObject;
  readonly attestationKeyName: Buffer;
  readonly ekFingerprint: string;
  readonly ekSubject: string;
  readonly ekIssuer: string;
  readonly expiresAt: number;
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
  private readonly pending = new Map<string, PendingActivation>();

  constructor(
    private readonly roots: TrustBundle,
    private readonly lifetimeSeconds = 120,
    private readonly maxPending = 10_000,
    private readonly clock: () => number = () => Date.now() / 1000,
    /** Activations one person may hold at once (as their unused device challenges), so one cannot fill `maxPending`. */
    private readonly perUser = 10,
  ) {}

  /** Checks the endorsement and returns the credential (TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET). */
  async begin(
    userId: string,
    body: AttestationStartBody,
  ): Promise<{ readonly credentialBlob: Buffer; readonly encryptedSecret: Buffer }> {
    this.sweep();
    const key = pendingKey(userId, body.nonce);
    const mine = [...this.pending.entries()].filter(([other, entry]) => entry.userId === userId && other !== key);
    if (mine.length >= this.perUser) {
      const oldest = Math.min(...mine.map(([, entry]) => entry.expiresAt));
      throw new QuotaExceeded(
        'user',
        `This account already has ${mine.length} TPM attestations in progress; finish one or wait for them to expire.`,
        Math.max(1, Math.ceil(oldest - this.clock())),
      );
    }
    if (this.pending.size >= this.maxPending) throw new AttestationError('format', 'too many attestations in progress');
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
    const attestationKey = keyOf(ak, 'format', 'attestation key');
    const attestationKeyName = nameOf(ak, 'format', 'attestation key');
    const secret = randomBytes(32);
    const credential = makeCredential(ekKey, attestationKeyName, secret);
    this.pending.set(key, {
      userId,
      secret,
      attestationKey,
      attestationKeyName,
      ekFingerprint: certificateFingerprint(ek),
      ekSubject: ek.subject,
      ekIssuer: ek.issuer,
      expiresAt: this.clock() + this.lifetimeSeconds,
    });
    return credential;
  }

  /**
   * Checks the activated secret and the certification of the device key; the pending
   * activation is used up whatever the outcome.
   */
  complete(
    userId: string,
    nonce: string,
    evidence: TpmAttestationEvidence,
    deviceJwk: { readonly x?: string; readonly y?: string; readonly crv?: string },
  ): VerifiedTpmKey {
    const key = pendingKey(userId, nonce);
    const pending = this.pending.get(key);
    this.pending.delete(key);
    if (!pending || pending.expiresAt < this.clock()) {
      throw new AttestationError(
        'credential-activation',
        'no credential was issued for this challenge (call /v1/device/attestation first, within two minutes)',
      );
    }
    const secret = decode(evidence.secret);
    if (secret.length !== pending.secret.length || !timingSafeEqual(secret, pending.secret)) {
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
    let signatureOk: boolean;
    try {
      const signature = parseTpmSignature(decode(evidence.certify_signature));
      signatureOk =
        signature.hashAlg === TPM_ALG.SHA256 &&
        verify(
          'sha256',
          signedBytes,
          pending.attestationKey.asymmetricKeyType === 'ec'
            ? { key: pending.attestationKey, dsaEncoding: 'ieee-p1363' }
            : pending.attestationKey,
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

  private sweep(): void {
    const now = this.clock();
    for (const [key, entry] of this.pending) if (entry.expiresAt < now) this.pending.delete(key);
  }
}

function pendingKey(userId: string, nonce: string): string {
  return `${userId}\u0000${nonce}`;
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
