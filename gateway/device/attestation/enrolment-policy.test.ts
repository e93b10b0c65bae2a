import { describe, expect, it } from 'vitest';
import { OPEN_ENROLMENT, parseEnrolmentPolicy } from './enrolment-policy';

describe('parseEnrolmentPolicy', () => {
  it('reads open as the policy that requires nothing', () => {
    expect(parseEnrolmentPolicy('open')).toBe(OPEN_ENROLMENT);
    expect(OPEN_ENROLMENT.name).toBe('open');
    expect(OPEN_ENROLMENT.requirements.size).toBe(0);
    expect(Object.isFrozen(OPEN_ENROLMENT)).toBe(true);
  });

  it('reads open written twice, in capitals or as a list as open', () => {
    expect(parseEnrolmentPolicy('open+OPEN')).toBe(OPEN_ENROLMENT);
    expect(parseEnrolmentPolicy(['Open'])).toBe(OPEN_ENROLMENT);
  });

  it('combines requirements written with +, commas or as a list', () => {
    expect([...parseEnrolmentPolicy('tpm+approval').requirements].sort()).toEqual(['approval', 'tpm']);
    expect(parseEnrolmentPolicy('approval, certificate').name).toBe('certificate+approval');
    expect(parseEnrolmentPolicy(['TPM', 'certificate']).name).toBe('certificate+tpm');
  });

  it('splits on +, commas and any white space, ignoring empty parts, inside list entries too', () => {
    const policy = parseEnrolmentPolicy(' approval\ttpm\n,,certificate++ ');
    expect(policy.name).toBe('certificate+tpm+approval');
    expect([...policy.requirements]).toEqual(['approval', 'tpm', 'certificate']);
    expect(Object.isFrozen(policy)).toBe(true);
    expect(parseEnrolmentPolicy(['approval+tpm', ' certificate ']).name).toBe('certificate+tpm+approval');
    expect(parseEnrolmentPolicy('tpm tpm').name).toBe('tpm');
  });

  it('refuses an empty policy', () => {
    const empty = 'The enrolment policy is empty; write "open" to admit any device.';
    expect(() => parseEnrolmentPolicy(' ')).toThrow(empty);
    expect(() => parseEnrolmentPolicy('')).toThrow(empty);
    expect(() => parseEnrolmentPolicy('+,')).toThrow(empty);
    expect(() => parseEnrolmentPolicy([])).toThrow(empty);
  });

  it('refuses unknown words, naming each', () => {
    expect(() => parseEnrolmentPolicy('tpm+aproval')).toThrow(
      new Error('Unknown enrolment requirement "aproval"; use open, certificate, tpm or approval.'),
    );
    expect(() => parseEnrolmentPolicy(['certficate', 'tpm', 'hardware'])).toThrow(
      new Error('Unknown enrolment requirement "certficate", "hardware"; use open, certificate, tpm or approval.'),
    );
  });

  it('refuses open mixed with a requirement, whichever comes first', () => {
    expect(() => parseEnrolmentPolicy('open+approval')).toThrow(
      new Error('The enrolment policy "open+approval" combines "open" with requirements; choose one.'),
    );
    expect(() => parseEnrolmentPolicy(['TPM', 'open'])).toThrow(
      new Error('The enrolment policy "tpm+open" combines "open" with requirements; choose one.'),
    );
  });
});
