import { describe, expect, it } from 'vitest';
import { PostureCheck } from '../../../shared/device';
import { notInstalled, recorded, recordedStderr, silent } from '../fixtures/recordings';
import {
  checkLinuxOsVersion,
  combineFirewallEvidence,
  detectDesktop,
  parseFirewalldState,
  parseGnomeScreenLock,
  parseKdeScreenLock,
  parseLinuxManaged,
  parseLsblk,
  parseNftRuleset,
  parseOsRelease,
  parseUfwConf,
  parseUfwStatus,
} from './linux';

const wellFormed = (check: PostureCheck) => {
  expect(PostureCheck.parse(check)).toEqual(check);
  expect(check.detail.length).toBeGreaterThan(10);
  if (check.status !== 'pass') expect(check.remediation.length).toBeGreaterThan(10);
  return check;
};

describe('os-version on Linux', () => {
  const ubuntu24 = recorded('linux/os-release-ubuntu-24.04.txt');
  const ubuntu20 = recorded('linux/os-release-ubuntu-20.04.txt');
  const kernel68 = recorded('linux/uname-r-6.8.txt');
  const kernel54 = recorded('linux/uname-r-5.4.txt');

  it('reads quoted os-release fields', () => {
    const fields = parseOsRelease(ubuntu24.stdout);
    expect(fields.ID).toBe('ubuntu');
    expect(fields.VERSION_ID).toBe('24.04');
    expect(fields.PRETTY_NAME).toBe('Ubuntu 24.04.1 LTS');
  });

  it('passes a release at or above the distribution and kernel minimums', () => {
    const check = wellFormed(checkLinuxOsVersion(ubuntu24, kernel68, { ubuntu: '22.04', linux: '6.1' }));
    expect(check.status).toBe('pass');
    expect(check.detail).toContain('Ubuntu 24.04.1 LTS');
    expect(check.detail).toContain('6.8.0-45-generic');
  });

  it('fails a distribution release below the minimum and names both versions', () => {
    const check = wellFormed(checkLinuxOsVersion(ubuntu20, kernel54, { ubuntu: '22.04' }));
    expect(check.status).toBe('fail');
    expect(check.detail).toContain('20.04');
    expect(check.detail).toContain('22.04');
  });

  it('fails a kernel below the minimum even when the distribution has none', () => {
    const check = wellFormed(checkLinuxOsVersion(ubuntu20, kernel54, { linux: '6.1' }));
    expect(check.status).toBe('fail');
    expect(check.detail).toContain('kernel 5.4.0');
  });

  it('ignores minimums for other distributions', () => {
    expect(checkLinuxOsVersion(ubuntu20, kernel54, { debian: '12', darwin: '14' }).status).toBe('pass');
  });

  it('answers unknown when a minimum applies but the release has no comparable version', () => {
    const check = wellFormed(checkLinuxOsVersion(recorded('linux/os-release-arch.txt'), kernel68, { arch: '2024' }));
    expect(check.status).toBe('unknown');
  });

  it('answers unknown when neither os-release nor uname can be read', () => {
    const check = wellFormed(checkLinuxOsVersion(recorded('linux/os-release-garbled.txt', 0), notInstalled, {}));
    expect(check.status).toBe('unknown');
  });

  it('answers unknown for empty output', () => {
    expect(checkLinuxOsVersion(silent, silent, { linux: '6.1' }).status).toBe('unknown');
  });
});

describe('disk-encryption on Linux (lsblk)', () => {
  it('passes a root filesystem on LVM inside LUKS', () => {
    const check = wellFormed(parseLsblk(recorded('linux/lsblk-luks-lvm.json')));
    expect(check.status).toBe('pass');
    expect(check.detail).toContain('dm_crypt-0');
  });

  it('fails a plain ext4 root partition', () => {
    const check = wellFormed(parseLsblk(recorded('linux/lsblk-plain.json')));
    expect(check.status).toBe('fail');
    expect(check.detail).toContain('sda2');
  });

  it('fails when only /home is encrypted (legacy MOUNTPOINT column)', () => {
    expect(wellFormed(parseLsblk(recorded('linux/lsblk-legacy-home-only-encrypted.json'))).status).toBe('fail');
  });

  it('answers unknown when the root filesystem is not on a listed block device', () => {
    expect(wellFormed(parseLsblk(recorded('linux/lsblk-zfs-root.json'))).status).toBe('unknown');
  });

  it('answers unknown for truncated JSON, empty output, an error and a missing tool', () => {
    expect(parseLsblk(recorded('linux/lsblk-truncated.txt')).status).toBe('unknown');
    expect(parseLsblk(silent).status).toBe('unknown');
    expect(parseLsblk(recordedStderr('linux/lsblk-unknown-column.stderr.txt')).status).toBe('unknown');
    expect(wellFormed(parseLsblk(notInstalled)).status).toBe('unknown');
  });
});

describe('screen-lock on Linux', () => {
  const on = recorded('linux/gsettings-true.txt');
  const off = recorded('linux/gsettings-false.txt');
  const idle300 = recorded('linux/gsettings-idle-delay-300.txt');
  const idle0 = recorded('linux/gsettings-idle-delay-0.txt');

  it('tells GNOME, KDE and other desktops apart', () => {
    expect(detectDesktop({ XDG_CURRENT_DESKTOP: 'ubuntu:GNOME' })).toBe('gnome');
    expect(detectDesktop({ XDG_CURRENT_DESKTOP: 'KDE' })).toBe('kde');
    expect(detectDesktop({ XDG_CURRENT_DESKTOP: 'XFCE' })).toBe('other');
    expect(detectDesktop({})).toBe('none');
  });

  it('passes GNOME with lock enabled and an idle delay', () => {
    const check = wellFormed(parseGnomeScreenLock(on, idle300, off));
    expect(check.status).toBe('pass');
    expect(check.detail).toContain('300');
  });

  it('fails GNOME with automatic lock off', () => {
    expect(wellFormed(parseGnomeScreenLock(off, idle300, off)).status).toBe('fail');
  });

  it('fails GNOME when the screen never blanks', () => {
    expect(wellFormed(parseGnomeScreenLock(on, idle0, off)).status).toBe('fail');
  });

  it('fails GNOME when lockdown disables the lock screen', () => {
    const check = wellFormed(parseGnomeScreenLock(on, idle300, on));
    expect(check.status).toBe('fail');
    expect(check.detail).toContain('disable-lock-screen');
  });

  it('answers unknown when a schema is missing, output is empty or gsettings is not installed', () => {
    const missingSchema = recordedStderr('linux/gsettings-schema-missing.stderr.txt');
    expect(wellFormed(parseGnomeScreenLock(missingSchema, idle300, off)).status).toBe('unknown');
    expect(parseGnomeScreenLock(on, silent, off).status).toBe('unknown');
    expect(parseGnomeScreenLock(notInstalled, notInstalled, notInstalled).status).toBe('unknown');
    expect(parseGnomeScreenLock(recorded('linux/ufw-active.txt'), idle300, off).status).toBe('unknown');
  });

  it('reads KDE Plasma kscreenlockerrc values', () => {
    const timeout = recorded('linux/kreadconfig-timeout-5.txt');
    expect(wellFormed(parseKdeScreenLock(recorded('linux/kreadconfig-autolock-true.txt'), timeout)).status).toBe(
      'pass',
    );
    expect(wellFormed(parseKdeScreenLock(recorded('linux/kreadconfig-autolock-false.txt'), timeout)).status).toBe(
      'fail',
    );
    expect(wellFormed(parseKdeScreenLock(silent, timeout)).status).toBe('unknown');
  });
});

describe('firewall on Linux', () => {
  it('reads firewalld running and not running', () => {
    expect(parseFirewalldState(recorded('linux/firewalld-running.txt')).status).toBe('pass');
    expect(parseFirewalldState(recordedStderr('linux/firewalld-not-running.stderr.txt', 252)).status).toBe('fail');
    expect(parseFirewalldState(notInstalled).status).toBe('unknown');
  });

  it('reads ufw active, inactive and the root-only error', () => {
    expect(parseUfwStatus(recorded('linux/ufw-active.txt')).status).toBe('pass');
    expect(parseUfwStatus(recorded('linux/ufw-inactive.txt')).status).toBe('fail');
    expect(parseUfwStatus(recorded('linux/ufw-needs-root.txt', 1)).status).toBe('unknown');
    expect(parseUfwStatus(silent).status).toBe('unknown');
  });

  it('reads ufw.conf ENABLED', () => {
    expect(parseUfwConf(recorded('linux/ufw-conf-enabled.txt')).status).toBe('pass');
    expect(parseUfwConf(recorded('linux/ufw-conf-disabled.txt')).status).toBe('fail');
    expect(parseUfwConf(recorded('linux/os-release-garbled.txt')).status).toBe('unknown');
  });

  it('passes an nftables input chain with a drop policy and fails one that accepts everything', () => {
    expect(parseNftRuleset(recorded('linux/nft-ruleset-drop.txt')).status).toBe('pass');
    expect(parseNftRuleset(recorded('linux/nft-ruleset-accept-all.txt')).status).toBe('fail');
    expect(parseNftRuleset(silent).status).toBe('fail');
    expect(parseNftRuleset(recordedStderr('linux/nft-needs-root.stderr.txt')).status).toBe('unknown');
  });

  it('passes when any source shows a firewall, fails when one shows none, else unknown', () => {
    const active = parseUfwStatus(recorded('linux/ufw-active.txt'));
    const inactive = parseUfwStatus(recorded('linux/ufw-inactive.txt'));
    const absent = parseFirewalldState(notInstalled);
    expect(wellFormed(combineFirewallEvidence([absent, inactive, active])).status).toBe('pass');
    expect(wellFormed(combineFirewallEvidence([absent, inactive])).status).toBe('fail');
    const none = wellFormed(
      combineFirewallEvidence([absent, parseUfwStatus(notInstalled), parseNftRuleset(notInstalled)]),
    );
    expect(none.status).toBe('unknown');
    expect(none.detail).toContain('not installed');
    expect(combineFirewallEvidence([]).status).toBe('unknown');
  });
});

describe('managed on Linux', () => {
  it('passes with IT’s root-owned policy file (the reader refuses any other)', () => {
    const check = wellFormed(parseLinuxManaged(notInstalled, true));
    expect(check.status).toBe('pass');
    expect(check.detail).toContain('owned by root');
  });

  it('passes a machine whose SSSD serves a domain, and not when SSSD is not running', () => {
    const check = wellFormed(parseLinuxManaged(notInstalled, false, recorded('linux/sssctl-domain-list.txt')));
    expect(check.status).toBe('pass');
    expect(check.detail).toBe('The device is joined to ad.lab.example (SSSD).');
    const down = recordedStderr('linux/sssctl-not-running.stderr.txt', 1);
    expect(parseLinuxManaged(notInstalled, false, down).status).toBe('fail');
  });

  it('passes a domain-joined machine', () => {
    const check = wellFormed(parseLinuxManaged(recorded('linux/realm-list-joined.txt'), false));
    expect(check.status).toBe('pass');
    expect(check.detail).toContain('lab.example.org');
  });

  it('fails with neither managed settings nor a domain join', () => {
    expect(wellFormed(parseLinuxManaged(silent, false)).status).toBe('fail');
    expect(wellFormed(parseLinuxManaged(notInstalled, false)).status).toBe('fail');
    expect(parseLinuxManaged(recorded('linux/os-release-garbled.txt'), false).status).toBe('fail');
  });
});
