import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuditLog } from '../../store/audit-log';
import type { DeviceTrust } from './options';
import { AttestationError } from './refusal';
import { verifySessionKeyCertification, type CertifiedSessionKey, type SessionKeyExpectations } from './session-key';
import { AttestationStartBody, TpmAttestationEvidence, type VerifiedTpmKey } from './tpm-attestation';

/** What the attestation route needs from the gateway. */
export interface AttestationRouteDependencies {
  /** Resolves the caller from the IdP access token (Bearer), as `/v1/device/challenge` does. */
  readonly identify: (request: FastifyRequest) => Promise<{ readonly userId: string }>;
  readonly trust: DeviceTrust;
  readonly audit: AuditLog;
}

/**
 * `POST /v1/device/attestation`: the client's EK certificate and attestation key in, a credential
 * (TPM2_MakeCredential against the EK, for the AK's name) out. The nonce is the one the session
 * request will carry.
 */
export function registerAttestationRoute(app: FastifyInstance, deps: AttestationRouteDependencies): void {
  app.post('/v1/device/attestation', async (request, reply) => {
    const { userId } = await deps.identify(request);
    const body = AttestationStartBody.safeParse(request.body);
    try {
      if (!body.success) {
        throw new AttestationError(
          'format',
          'the body must be {"nonce", "ek_certificate", "ak_public"} with base64 DER and TPM2B_PUBLIC',
        );
      }
      if (!deps.trust.tpm) {
        throw new AttestationError(
          'ek-certificate',
          'this gateway trusts no TPM manufacturer yet (IT configures the manufacturer roots)',
        );
      }
      const credential = await deps.trust.tpm.begin(userId, body.data);
      return await reply.header('cache-control', 'no-store').send({
        credential_blob: credential.credentialBlob.toString('base64url'),
        encrypted_secret: credential.encryptedSecret.toString('base64url'),
      });
    } catch (error) {
      if (!(error instanceof AttestationError)) throw error;
      await auditRefusal(deps.audit, userId, error);
      throw error.toProblem();
    }
  });
}

/**
 * Verifies the TPM evidence in a session request, if any; refuses (audited) when it does not hold.
 *
 * Returns undefined when the request carries no attestation: the device is then `software`.
 */
export async function verifySessionAttestation(
  trust: DeviceTrust,
  audit: AuditLog,
  userId: string,
  nonce: string,
  attestation: unknown,
  deviceJwk: { readonly x?: string; readonly y?: string; readonly crv?: string },
): Promise<VerifiedTpmKey | undefined> {
  if (attestation === undefined) return undefined;
  try {
    const evidence = TpmAttestationEvidence.safeParse(attestation);
    if (!evidence.success) {
      throw new AttestationError(
        'format',
        'attestation must be {"format": "tpm2", "secret", "device_public", "certify_info", "certify_signature"}',
      );
    }
    if (!trust.tpm) throw new AttestationError('ek-certificate', 'this gateway trusts no TPM manufacturer yet');
    return await trust.tpm.complete(userId, nonce, evidence.data, deviceJwk);
  } catch (error) {
    if (!(error instanceof AttestationError)) throw error;
    await auditRefusal(audit, userId, error);
    throw error.toProblem();
  }
}

/**
 * Verifies the session-key certification in a session request, if any (`session_key`); refuses
 * (audited, step `session-key`) when it does not hold. Returns undefined when there is none: the
 * DPoP key is then the device key itself.
 */
export async function verifySessionKey(
  audit: AuditLog,
  userId: string,
  value: unknown,
  expected: SessionKeyExpectations,
): Promise<CertifiedSessionKey | undefined> {
  if (value === undefined) return undefined;
  try {
    return await verifySessionKeyCertification(value, expected);
  } catch (error) {
    if (!(error instanceof AttestationError)) throw error;
    await auditRefusal(audit, userId, error);
    throw error.toProblem();
  }
}

/**
 * Refuses (audited) a session key whose certifying key this request did not prove to be in a TPM:
 * only a verified hardware key may hand its sessions to a software key.
 */
export async function refuseUnattestedSessionKey(audit: AuditLog, userId: string): Promise<never> {
  const error = new AttestationError(
    'session-key',
    'only a device key verified as hardware by TPM attestation in the same request may certify a session key',
  );
  await auditRefusal(audit, userId, error);
  throw error.toProblem();
}

async function auditRefusal(audit: AuditLog, userId: string, error: AttestationError): Promise<void> {
  await audit.append({
    kind: 'enrolment',
    subject: userId,
    data: { outcome: 'refused', reason: 'DEVICE_ATTESTATION_FAILED', step: error.step, detail: error.detail },
  });
}
