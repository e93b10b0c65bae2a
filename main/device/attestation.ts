import { z } from 'zod';
import type { KeyAttestor } from './key';

/**
 * The `attestation` member of a `POST /v1/session` body (docs/protocol.md, "TPM key attestation").
 *
 * Every value is one of the TPM's own binary structures, base64url.
 */
export interface TpmSessionEvidence {
  readonly format: 'tpm2';
  readonly secret: string;
  readonly device_public: string;
  readonly certify_info: string;
  readonly certify_signature: string;
}

/** The body `POST /v1/device/attestation` expects. */
export interface AttestationStartRequest {
  readonly nonce: string;
  readonly ek_certificate: string;
  readonly ak_public: string;
}

/** The credential `POST /v1/device/attestation` answers with. */
export const AttestationCredential = z.object({
  credential_blob: z.string().min(1),
  encrypted_secret: z.string().min(1),
});
export type AttestationCredential = z.infer<typeof AttestationCredential>;

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');

/**
 * The client's half of TPM key attestation for the challenge `nonce`: sends the TPM's endorsement
 * through `requestCredential`, activates the credential the gateway made and certifies the device
 * key over the nonce. Returns what the session request carries.
 *
 * `qualifyingData` is the nonce's bytes; only tests of the gateway's refusals pass another value.
 */
export async function attestDeviceKey(
  attestor: KeyAttestor,
  nonce: string,
  requestCredential: (body: AttestationStartRequest) => Promise<AttestationCredential>,
  qualifyingData: Uint8Array = Buffer.from(nonce, 'base64url'),
): Promise<TpmSessionEvidence> {
  const endorsement = await attestor.endorsement();
  const credential = await requestCredential({
    nonce,
    ek_certificate: b64(endorsement.ekCertificate),
    ak_public: b64(endorsement.attestationKeyPublic),
  });
  const result = await attestor.activateAndCertify(
    {
      credentialBlob: Buffer.from(credential.credential_blob, 'base64url'),
      encryptedSecret: Buffer.from(credential.encrypted_secret, 'base64url'),
    },
    qualifyingData,
  );
  return {
    format: 'tpm2',
    secret: b64(result.secret),
    device_public: b64(result.devicePublic),
    certify_info: b64(result.certifyInfo),
    certify_signature: b64(result.certifySignature),
  };
}
