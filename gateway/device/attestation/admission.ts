import type { AttestationStep, EnrolmentReason } from '../../../shared/reasons';
import { problem, ProblemError } from '../../http/problems';
import type { AuditLog } from '../../store/audit-log';
import type { EnrolmentPolicy } from './enrolment-policy';
import type { EnrolmentFacts, EnrolmentRecord, EnrolmentStore } from './enrolments';
import { enrolmentRefusal } from './refusal';

/** What a session request proved about its device beyond the posture report. */
export interface AdmissionRequest {
  readonly facts: EnrolmentFacts;
  /** The posture report's own claim; only a verified TPM attestation may back `hardware`. */
  readonly claimedAssurance: 'software' | 'hardware';
  readonly tpmVerified: boolean;
  readonly certificateVerified: boolean;
  /** Why no certificate counts (none, untrusted CA, an untrusted peer's header), for the refusal. */
  readonly certificateDetail?: string;
}

/**
 * Applies the enrolment policy to a device asking for a session: refuses with the reason the
 * person sees (and audits the refusal), or returns the device's enrolment record.
 */
export async function admitDevice(
  policy: EnrolmentPolicy,
  store: EnrolmentStore,
  audit: AuditLog,
  request: AdmissionRequest,
): Promise<EnrolmentRecord> {
  const { facts } = request;
  const refuse = async (reason: EnrolmentReason, detail: string, step?: AttestationStep): Promise<never> => {
    await audit.append({
      kind: 'enrolment',
      subject: facts.userId,
      // An undefined `step` is left out of the record (the audit log drops undefined members).
      data: { outcome: 'refused', reason, step, jkt: facts.jkt, policy: policy.name, detail },
    });
    throw enrolmentRefusal(reason, detail, step);
  };
  if (request.claimedAssurance === 'hardware' && !request.tpmVerified) {
    return refuse(
      'DEVICE_ATTESTATION_FAILED',
      'The posture report claims a hardware-backed key but carries no TPM key attestation; ' +
        'only a key whose attestation the gateway verified counts as hardware.',
      'missing',
    );
  }
  if (policy.requirements.has('tpm') && !request.tpmVerified) {
    return refuse(
      'DEVICE_ATTESTATION_FAILED',
      `The enrolment policy (${policy.name}) admits only devices whose key a TPM attests, and this request carries no TPM key attestation.`,
      'missing',
    );
  }
  if (policy.requirements.has('certificate') && !request.certificateVerified) {
    return refuse(
      'DEVICE_CERTIFICATE_REQUIRED',
      `The enrolment policy (${policy.name}) admits only devices that present a managed-device certificate from the organisation's CA: ${request.certificateDetail ?? 'none was presented'}.`,
    );
  }
  const retiredProblem = (decidedAt: string | undefined) =>
    new ProblemError(
      problem(
        'device-revoked',
        403,
        'Device retired',
        `IT retired this device on ${decidedAt ?? 'an earlier date'}; contact IT to enrol it again.`,
      ),
    );
  // A TPM-verified device is its TPM (the EK), not one key: once IT retired it for this person, a new key
  // made in the same TPM is the same device and stays out.
  if (facts.ekFingerprint !== undefined) {
    const retired = (await store.list({ userId: facts.userId, status: 'retired' })).find(
      (other) =>
        other.userId === facts.userId && other.ekFingerprint === facts.ekFingerprint && other.jkt !== facts.jkt,
    );
    if (retired) {
      await audit.append({
        kind: 'enrolment',
        subject: facts.userId,
        data: {
          outcome: 'refused',
          reason: 'DEVICE_REVOKED',
          jkt: facts.jkt,
          policy: policy.name,
          detail: `a new key of the TPM whose device key ${retired.jkt} IT retired`,
          retiredJkt: retired.jkt,
          ekFingerprint: facts.ekFingerprint,
        },
      });
      throw retiredProblem(retired.decidedAt);
    }
  }
  const record = await store.upsert(facts, policy.requirements.has('approval') ? 'pending' : 'approved');
  if (record.status === 'retired') throw retiredProblem(record.decidedAt);
  if (record.status === 'pending') {
    return refuse(
      'DEVICE_ENROLMENT_PENDING',
      `This device (${facts.deviceId}) waits for an administrator's approval since ${record.requestedAt}.`,
    );
  }
  return record;
}
