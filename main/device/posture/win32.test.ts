import { describe, expect, it } from 'vitest';
import { PostureCheck } from '../../../shared/device';
import { notInstalled, recorded, recordedStderr, silent } from '../fixtures/recordings';
import {
  parseBitLockerProtectionProperty,
  parseDsregcmdStatus,
  parseManageBdeStatus,
  parseNetshFirewall,
  parseRegQuery,
  parseWindowsScreenLock,
  parseWindowsVer,
} from './win32';

const wellFormed = (check: PostureCheck) => {
  expect(PostureCheck.parse(check)).toEqual(check);
  if (check.status !== 'pass') expect(check.remediation.length).toBeGreaterThan(10);
  return check;
};

describe('os-version on Windows (ver)', () => {
  it('passes Windows 11 above the minimum and names it', () => {
    const check = wellFormed(parseWindowsVer(recorded('win32/ver-11.txt'), '10.0.19045'));
    expect(check.status).toBe('pass');
    expect(check.detail).toContain('Windows 11 10.0.22631.4460');
  });

  it('fails a build below the minimum', () => {
    expect(wellFormed(parseWindowsVer(recorded('win32/ver-10-old.txt'), '10.0.19045')).status).toBe('fail');
  });

  it('answers unknown for an error, empty output and a missing tool', () => {
    expect(wellFormed(parseWindowsVer(recorded('win32/ver-garbled.txt', 1), '10.0.19045')).status).toBe('unknown');
    expect(parseWindowsVer(silent).status).toBe('unknown');
    expect(parseWindowsVer(notInstalled).status).toBe('unknown');
  });
});

describe('disk-encryption on Windows (manage-bde -status C:)', () => {
  it('passes an encrypted drive with protection on', () => {
    const check = wellFormed(parseManageBdeStatus(recorded('win32/manage-bde-on.txt')));
    expect(check.status).toBe('pass');
    expect(check.detail).toContain('XTS-AES 128');
  });

  it('fails a decrypted drive, suspended protection and an unfinished encryption', () => {
    expect(wellFormed(parseManageBdeStatus(recorded('win32/manage-bde-off.txt'))).status).toBe('fail');
    const suspended = wellFormed(parseManageBdeStatus(recorded('win32/manage-bde-suspended.txt')));
    expect(suspended.status).toBe('fail');
    expect(suspended.detail).toContain('1 reboots left');
    const encrypting = wellFormed(parseManageBdeStatus(recorded('win32/manage-bde-encrypting.txt')));
    expect(encrypting.status).toBe('fail');
    expect(encrypting.detail).toContain('38.2%');
  });

  it('answers unknown without administrator rights, in another language, empty or missing', () => {
    expect(wellFormed(parseManageBdeStatus(recorded('win32/manage-bde-access-denied.txt', -1))).status).toBe('unknown');
    expect(parseManageBdeStatus(recorded('win32/manage-bde-german.txt')).status).toBe('unknown');
    expect(parseManageBdeStatus(silent).status).toBe('unknown');
    expect(parseManageBdeStatus(notInstalled).status).toBe('unknown');
  });

  it('reads the BitLockerProtection shell property a standard user can see', () => {
    expect(wellFormed(parseBitLockerProtectionProperty(recorded('win32/bitlocker-property-on.txt'))).status).toBe(
      'pass',
    );
    expect(wellFormed(parseBitLockerProtectionProperty(recorded('win32/bitlocker-property-off.txt'))).status).toBe(
      'fail',
    );
    expect(
      wellFormed(parseBitLockerProtectionProperty(recorded('win32/bitlocker-property-suspended.txt'))).status,
    ).toBe('fail');
    expect(
      wellFormed(parseBitLockerProtectionProperty(recorded('win32/bitlocker-property-garbled.txt', 1))).status,
    ).toBe('unknown');
    expect(parseBitLockerProtectionProperty(silent).status).toBe('unknown');
  });
});

describe('managed on Windows (dsregcmd /status)', () => {
  it('passes an Entra-joined computer and mentions the tenant and MDM', () => {
    const check = wellFormed(parseDsregcmdStatus(recorded('win32/dsregcmd-entra-joined.txt')));
    expect(check.status).toBe('pass');
    expect(check.detail).toContain('Example Research Lab');
    expect(check.detail).toContain('MDM');
  });

  it('fails a computer that is only workplace-registered', () => {
    const check = wellFormed(parseDsregcmdStatus(recorded('win32/dsregcmd-workplace-only.txt')));
    expect(check.status).toBe('fail');
    expect(check.detail).toContain('registered');
  });

  it('answers unknown for an error, empty output and a missing tool', () => {
    expect(wellFormed(parseDsregcmdStatus(recorded('win32/dsregcmd-garbled.txt', 1))).status).toBe('unknown');
    expect(parseDsregcmdStatus(silent).status).toBe('unknown');
    expect(parseDsregcmdStatus(notInstalled).status).toBe('unknown');
  });

  it('passes a computer enrolled in MDM (the enrolment registry) even when it is not joined', () => {
    const check = wellFormed(
      parseDsregcmdStatus(recorded('win32/dsregcmd-workplace-only.txt'), recorded('win32/reg-enrollments-intune.txt')),
    );
    expect(check.status).toBe('pass');
    expect(check.detail).toBe('The computer is enrolled in MDM (avery.stone@lab.example).');
    expect(parseDsregcmdStatus(notInstalled, recorded('win32/reg-enrollments-intune.txt')).status).toBe('pass');
  });

  it('does not count a removed enrolment or a missing enrolment key', () => {
    const none = recorded('win32/reg-enrollments-none.txt');
    expect(parseDsregcmdStatus(recorded('win32/dsregcmd-workplace-only.txt'), none).status).toBe('fail');
    const missing = recordedStderr('win32/reg-not-found.stderr.txt', 1);
    expect(parseDsregcmdStatus(recorded('win32/dsregcmd-workplace-only.txt'), missing).status).toBe('fail');
    expect(parseDsregcmdStatus(notInstalled, none).status).toBe('unknown');
  });
});

describe('firewall on Windows (netsh advfirewall)', () => {
  it('passes with every profile on', () => {
    expect(wellFormed(parseNetshFirewall(recorded('win32/netsh-all-on.txt'))).status).toBe('pass');
  });

  it('fails and names the profile that is off', () => {
    const check = wellFormed(parseNetshFirewall(recorded('win32/netsh-public-off.txt')));
    expect(check.status).toBe('fail');
    expect(check.detail).toContain('public profile');
  });

  it('answers unknown for an error, empty output and a missing tool', () => {
    expect(wellFormed(parseNetshFirewall(recorded('win32/netsh-garbled.txt', 1))).status).toBe('unknown');
    expect(parseNetshFirewall(silent).status).toBe('unknown');
    expect(parseNetshFirewall(notInstalled).status).toBe('unknown');
  });
});

describe('screen-lock on Windows (reg query)', () => {
  const noPolicy = recordedStderr('win32/reg-not-found.stderr.txt');

  it('reads REG_DWORD values as decimal and a missing key as empty', () => {
    expect(parseRegQuery(recorded('win32/reg-inactivity-900.txt')).values.get('inactivitytimeoutsecs')).toBe('900');
    expect(parseRegQuery(noPolicy)).toEqual({ values: new Map(), readable: true });
    expect(parseRegQuery(recorded('win32/reg-desktop-secure-screensaver.txt')).values.get('wallpaper')).toBe('');
  });

  it('passes with a machine inactivity limit', () => {
    const check = wellFormed(parseWindowsScreenLock(recorded('win32/reg-inactivity-900.txt'), noPolicy, noPolicy));
    expect(check.status).toBe('pass');
    expect(check.detail).toContain('900');
  });

  it('passes with a screen saver that requires sign-in', () => {
    const desktop = recorded('win32/reg-desktop-secure-screensaver.txt');
    expect(wellFormed(parseWindowsScreenLock(noPolicy, desktop, noPolicy)).status).toBe('pass');
  });

  it('fails when the screen saver does not require sign-in and no limit is set', () => {
    const desktop = recorded('win32/reg-desktop-no-screensaver.txt');
    const check = wellFormed(parseWindowsScreenLock(noPolicy, desktop, noPolicy));
    expect(check.status).toBe('fail');
    expect(check.detail).toContain('does not require sign-in');
  });

  it('answers unknown when the registry cannot be read', () => {
    const denied = recordedStderr('win32/reg-access-denied.stderr.txt');
    expect(wellFormed(parseWindowsScreenLock(noPolicy, denied, noPolicy)).status).toBe('unknown');
    expect(parseWindowsScreenLock(notInstalled, notInstalled, notInstalled).status).toBe('unknown');
  });
});
