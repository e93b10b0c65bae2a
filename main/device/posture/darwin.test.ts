import { describe, expect, it } from 'vitest';
import { PostureCheck } from '../../../shared/device';
import { notInstalled, recorded, recordedStderr, silent } from '../fixtures/recordings';
import {
  parseFdesetupStatus,
  parseProfilesEnrollment,
  parseSocketFilterFirewall,
  parseSwVers,
  parseSysadminctlScreenLock,
} from './darwin';

const wellFormed = (check: PostureCheck) => {
  expect(PostureCheck.parse(check)).toEqual(check);
  if (check.status !== 'pass') expect(check.remediation.length).toBeGreaterThan(10);
  return check;
};

describe('os-version on macOS (sw_vers)', () => {
  it('passes a version at or above the minimum', () => {
    const check = wellFormed(parseSwVers(recorded('darwin/sw_vers-14.5.txt'), '14.0'));
    expect(check.status).toBe('pass');
    expect(check.detail).toContain('macOS 14.5 (23F79)');
  });

  it('fails a version below the minimum', () => {
    const check = wellFormed(parseSwVers(recorded('darwin/sw_vers-12.7.txt'), '14.0'));
    expect(check.status).toBe('fail');
    expect(check.detail).toContain('12.7.6');
  });

  it('answers unknown for a usage message, empty output and a missing tool', () => {
    expect(wellFormed(parseSwVers(recorded('darwin/sw_vers-garbled.txt', 1), '14.0')).status).toBe('unknown');
    expect(parseSwVers(silent).status).toBe('unknown');
    expect(parseSwVers(notInstalled).status).toBe('unknown');
  });
});

describe('disk-encryption on macOS (fdesetup status)', () => {
  it('passes when FileVault is on', () => {
    expect(wellFormed(parseFdesetupStatus(recorded('darwin/fdesetup-on.txt'))).status).toBe('pass');
  });

  it('fails when FileVault is off, deferred, encrypting or decrypting', () => {
    expect(wellFormed(parseFdesetupStatus(recorded('darwin/fdesetup-off.txt'))).status).toBe('fail');
    expect(wellFormed(parseFdesetupStatus(recorded('darwin/fdesetup-deferred.txt'))).status).toBe('fail');
    const encrypting = wellFormed(parseFdesetupStatus(recorded('darwin/fdesetup-encrypting.txt')));
    expect(encrypting.status).toBe('fail');
    expect(encrypting.detail).toContain('47.39');
    expect(wellFormed(parseFdesetupStatus(recorded('darwin/fdesetup-decrypting.txt'))).status).toBe('fail');
  });

  it('answers unknown for an error, empty output and a missing tool', () => {
    expect(wellFormed(parseFdesetupStatus(recorded('darwin/fdesetup-garbled.txt', 1))).status).toBe('unknown');
    expect(parseFdesetupStatus(silent).status).toBe('unknown');
    expect(parseFdesetupStatus(notInstalled).status).toBe('unknown');
  });
});

describe('managed on macOS (profiles status -type enrollment)', () => {
  it('passes an MDM-enrolled Mac and names the server', () => {
    const check = wellFormed(parseProfilesEnrollment(recorded('darwin/profiles-enrolled.txt')));
    expect(check.status).toBe('pass');
    expect(check.detail).toContain('mdm.lab.example.org');
  });

  it('fails a Mac that is not enrolled', () => {
    expect(wellFormed(parseProfilesEnrollment(recorded('darwin/profiles-not-enrolled.txt'))).status).toBe('fail');
  });

  it('fails an unenrolled Mac whatever files are installed: only the MDM enrolment counts', () => {
    expect(parseProfilesEnrollment(recorded('darwin/profiles-not-enrolled.txt')).status).toBe('fail');
  });

  it('answers unknown for an error, empty output and a missing tool', () => {
    expect(wellFormed(parseProfilesEnrollment(recorded('darwin/profiles-garbled.txt', 1))).status).toBe('unknown');
    expect(parseProfilesEnrollment(silent).status).toBe('unknown');
    expect(parseProfilesEnrollment(notInstalled).status).toBe('unknown');
  });
});

describe('firewall on macOS (socketfilterfw)', () => {
  it('passes state 1 and state 2', () => {
    expect(wellFormed(parseSocketFilterFirewall(recorded('darwin/socketfilterfw-enabled.txt'))).status).toBe('pass');
    expect(wellFormed(parseSocketFilterFirewall(recorded('darwin/socketfilterfw-block-all.txt'))).status).toBe('pass');
  });

  it('fails state 0', () => {
    expect(wellFormed(parseSocketFilterFirewall(recorded('darwin/socketfilterfw-disabled.txt'))).status).toBe('fail');
  });

  it('answers unknown for a usage message, empty output and a missing tool', () => {
    expect(wellFormed(parseSocketFilterFirewall(recorded('darwin/socketfilterfw-garbled.txt', 64))).status).toBe(
      'unknown',
    );
    expect(parseSocketFilterFirewall(silent).status).toBe('unknown');
    expect(parseSocketFilterFirewall(notInstalled).status).toBe('unknown');
  });
});

describe('screen-lock on macOS (sysadminctl -screenLock status, on stderr)', () => {
  it('passes an immediate or short delay', () => {
    expect(
      wellFormed(parseSysadminctlScreenLock(recordedStderr('darwin/sysadminctl-screenlock-immediate.stderr.txt', 0)))
        .status,
    ).toBe('pass');
    const check = wellFormed(
      parseSysadminctlScreenLock(recordedStderr('darwin/sysadminctl-screenlock-300.stderr.txt', 0)),
    );
    expect(check.status).toBe('pass');
    expect(check.detail).toContain('300');
  });

  it('fails when the lock is off or comes only after an hour', () => {
    expect(
      wellFormed(parseSysadminctlScreenLock(recordedStderr('darwin/sysadminctl-screenlock-off.stderr.txt', 0))).status,
    ).toBe('fail');
    expect(
      wellFormed(parseSysadminctlScreenLock(recordedStderr('darwin/sysadminctl-screenlock-3600.stderr.txt', 0))).status,
    ).toBe('fail');
  });

  it('answers unknown for an unrelated message, empty output and a missing tool', () => {
    expect(
      wellFormed(parseSysadminctlScreenLock(recordedStderr('darwin/sysadminctl-garbled.stderr.txt', 0))).status,
    ).toBe('unknown');
    expect(parseSysadminctlScreenLock(silent).status).toBe('unknown');
    expect(parseSysadminctlScreenLock(notInstalled).status).toBe('unknown');
  });
});
