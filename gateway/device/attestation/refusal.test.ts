import { describe, expect, it } from 'vitest';
import { ProblemError } from '../../http/problems';
import { enrolmentMessages, reasonTitles } from '../../../shared/reasons';
import { AttestationError, enrolmentRefusal } from './refusal';

describe('enrolmentRefusal', () => {
  it.each([
    ['DEVICE_ENROLMENT_PENDING', 'device-enrolment-pending'],
    ['DEVICE_CERTIFICATE_REQUIRED', 'device-certificate-required'],
    ['DEVICE_ATTESTATION_FAILED', 'device-attestation-failed'],
  ] as const)('answers %s with a 403 of its own problem type, title and message', (reason, kind) => {
    const error = enrolmentRefusal(reason, 'what the gateway found');
    expect(error).toBeInstanceOf(ProblemError);
    expect(error.problem).toStrictEqual({
      type: `urn:clearance:problem:${kind}`,
      title: reasonTitles[reason],
      status: 403,
      detail: 'what the gateway found',
      reason,
      message: enrolmentMessages[reason],
    });
  });

  it('names the attestation step when there is one', () => {
    expect(enrolmentRefusal('DEVICE_ATTESTATION_FAILED', 'no credential', 'credential-activation').problem).toEqual(
      expect.objectContaining({ step: 'credential-activation', reason: 'DEVICE_ATTESTATION_FAILED' }),
    );
  });
});

describe('AttestationError', () => {
  it('names the step and what did not match, and becomes the 403 attestation refusal', () => {
    const error = new AttestationError('ek-certificate', 'the EK certificate does not chain');
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('AttestationError');
    expect(error.message).toBe('ek-certificate: the EK certificate does not chain');
    expect(error.step).toBe('ek-certificate');
    expect(error.detail).toBe('the EK certificate does not chain');
    expect(error.toProblem().problem).toStrictEqual({
      type: 'urn:clearance:problem:device-attestation-failed',
      title: reasonTitles.DEVICE_ATTESTATION_FAILED,
      status: 403,
      detail: 'the EK certificate does not chain',
      reason: 'DEVICE_ATTESTATION_FAILED',
      message: enrolmentMessages.DEVICE_ATTESTATION_FAILED,
      step: 'ek-certificate',
    });
  });
});
