import { enrolmentMessages, reasonTitles, type AttestationStep, type EnrolmentReason } from '../../../shared/reasons';
import { problem, ProblemError, type ProblemKind } from '../../http/problems';

const KIND: Readonly<Record<EnrolmentReason, ProblemKind>> = {
  DEVICE_ENROLMENT_PENDING: 'device-enrolment-pending',
  DEVICE_CERTIFICATE_REQUIRED: 'device-certificate-required',
  DEVICE_ATTESTATION_FAILED: 'device-attestation-failed',
};

/**
 * The 403 the gateway sends when its enrolment policy refuses a device a session.
 *
 * `detail` says what the gateway found (for IT and the log); `message` is the person's wording from `shared/`.
 */
export function enrolmentRefusal(reason: EnrolmentReason, detail: string, step?: AttestationStep): ProblemError {
  return new ProblemError(
    problem(KIND[reason], 403, reasonTitles[reason], detail, {
      reason,
      message: enrolmentMessages[reason],
      ...(step ? { step } : {}),
    }),
  );
}

/** A TPM key attestation that failed at `step`; `detail` names what did not match. */
export class AttestationError extends Error {
  constructor(
    readonly step: AttestationStep,
    readonly detail: string,
  ) {
    super(`${step}: ${detail}`);
    this.name = 'AttestationError';
  }

  /** The 403 problem for this failure. */
  toProblem(): ProblemError {
    return enrolmentRefusal('DEVICE_ATTESTATION_FAILED', this.detail, this.step);
  }
}
