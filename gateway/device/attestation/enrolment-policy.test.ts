import { describe, expect, it } from 'vitest';
import { OPEN_ENROLMENT, parseEnrolmentPolicy } from './enrolment-policy';

describe('parseEnrolmentPolicy', () => {
  it('reads open as the policy that requires nothing', () => {
    expect(parseEnrolmentPolicy('open')).toBe(OPEN_ENROLMENT);
    expect(OPEN_ENROLMENT.requirements.size).toBe(0);
  });

  it('combines requirements written with +, commas or as a list', () => {
    expect([...parseEnrolmentPolicy('tpm+approval').requirements].sort()).toEqual(['approval', 'tpm']);
    expect(parseEnrolmentPolicy('approval, certificate').name).toBe('certificate+approval');
    expect(parseEnrolmentPolicy(['TPM', 'certificate']).name).toBe('certificate+tpm');
  });

  it('refuses an empty policy, an unknown word and open mixed with a requirement', () => {
    expect(() => parseEnrolmentPolicy(' ')).toThrow(/empty/);
    expect(() => parseEnrolmentPolicy('tpm+aproval')).toThrow(/"aproval"/);
    expect(() => parseEnrolmentPolicy('open+approval')).toThrow(/combines "open"/);
  });
});
