import type { PostureCheck } from '../../../shared/device';
import type { CommandResult, CommandRunner } from '../../platform';
import {
  describeFailure,
  fail,
  leadingVersion,
  notRunnable,
  pass,
  truncate,
  unknown,
  versionMeetsMinimum,
} from './check';

/**
 * The Linux commands the checks run, as `[command, args]`: one table so recorded fixtures use the same keys.
 */
export const linuxCommands = {
  osRelease: ['cat', ['/etc/os-release']],
  kernel: ['uname', ['-r']],
  lsblk: ['lsblk', ['-J', '-o', 'NAME,TYPE,FSTYPE,MOUNTPOINTS']],
  /** util-linux before 2.37 has no MOUNTPOINTS column. */
  lsblkLegacy: ['lsblk', ['-J', '-o', 'NAME,TYPE,FSTYPE,MOUNTPOINT']],
  gnomeLockEnabled: ['gsettings', ['get', 'org.gnome.desktop.screensaver', 'lock-enabled']],
  gnomeIdleDelay: ['gsettings', ['get', 'org.gnome.desktop.session', 'idle-delay']],
  gnomeLockDisabled: ['gsettings', ['get', 'org.gnome.desktop.lockdown', 'disable-lock-screen']],
  kdeAutolock6: [
    'kreadconfig6',
    ['--file', 'kscreenlockerrc', '--group', 'Daemon', '--key', 'Autolock', '--default', 'true'],
  ],
  kdeTimeout6: [
    'kreadconfig6',
    ['--file', 'kscreenlockerrc', '--group', 'Daemon', '--key', 'Timeout', '--default', '5'],
  ],
  kdeAutolock5: [
    'kreadconfig5',
    ['--file', 'kscreenlockerrc', '--group', 'Daemon', '--key', 'Autolock', '--default', 'true'],
  ],
  kdeTimeout5: [
    'kreadconfig5',
    ['--file', 'kscreenlockerrc', '--group', 'Daemon', '--key', 'Timeout', '--default', '5'],
  ],
  firewalld: ['firewall-cmd', ['--state']],
  ufw: ['ufw', ['status']],
  ufwConf: ['cat', ['/etc/ufw/ufw.conf']],
  nft: ['nft', ['list', 'ruleset']],
  realm: ['realm', ['list']],
  sssd: ['sssctl', ['domain-list']],
} as const satisfies Record<string, readonly [string, readonly string[]]>;

/** Parses `/etc/os-release` (`KEY=value` or `KEY="value"` lines). */
export function parseOsRelease(text: string): Readonly<Record<string, string>> {
  const fields: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!match) continue;
    const raw = match[2] ?? '';
    fields[match[1] as string] = raw.replace(/^(["'])(.*)\1$/, '$2').replace(/\\(["$`\\])/g, '$1');
  }
  return fields;
}

const OS_UPDATE_FIX = 'Update the operating system to a supported release, or ask IT which release is required.';

/**
 * OS version from `/etc/os-release` and `uname -r`, against the minimums IT set.
 *
 * Keys of `minimums`: `linux` is the lowest kernel release; a distribution's os-release `ID`
 * (`debian`, `ubuntu`, `fedora`, …) is its lowest `VERSION_ID`. Both apply when both are set.
 */
export function checkLinuxOsVersion(
  osRelease: CommandResult,
  kernel: CommandResult,
  minimums: Readonly<Record<string, string>> = {},
): PostureCheck {
  const fields = !notRunnable(osRelease) && osRelease.exitCode === 0 ? parseOsRelease(osRelease.stdout) : {};
  const kernelRelease = !notRunnable(kernel) && kernel.exitCode === 0 ? kernel.stdout.trim().split(/\s+/)[0] : '';
  const kernelVersion = kernelRelease ? leadingVersion(kernelRelease) : undefined;
  const distroId = fields.ID?.toLowerCase();
  const name = fields.PRETTY_NAME ?? (fields.NAME ? `${fields.NAME} ${fields.VERSION_ID ?? ''}`.trim() : undefined);
  if (!name && !kernelVersion) {
    return unknown(
      'os-version',
      `The OS version could not be read: ${describeFailure('cat /etc/os-release', osRelease)}; ${describeFailure('uname -r', kernel)}.`,
      'Make sure /etc/os-release is readable, then check again.',
    );
  }
  const label = [name, kernelRelease ? `kernel ${kernelRelease}` : undefined].filter(Boolean).join(', ');
  const problems: string[] = [];
  const undecided: string[] = [];
  const kernelMinimum = minimums.linux;
  if (kernelMinimum) {
    const verdict = kernelVersion ? versionMeetsMinimum(kernelVersion, kernelMinimum) : 'unknown';
    if (verdict === 'fail') problems.push(`kernel ${kernelVersion} is older than the required ${kernelMinimum}`);
    if (verdict === 'unknown') undecided.push(`the kernel release could not be compared with ${kernelMinimum}`);
  }
  const distroMinimum = distroId ? minimums[distroId] : undefined;
  if (distroMinimum) {
    const versionId = fields.VERSION_ID;
    const verdict = versionId ? versionMeetsMinimum(versionId, distroMinimum) : 'unknown';
    if (verdict === 'fail')
      problems.push(`${fields.NAME ?? distroId} ${versionId} is older than the required ${distroMinimum}`);
    if (verdict === 'unknown') undecided.push(`the ${distroId} release could not be compared with ${distroMinimum}`);
  }
  if (problems.length > 0) return fail('os-version', `${label}: ${problems.join('; ')}.`, OS_UPDATE_FIX);
  if (undecided.length > 0) {
    return unknown('os-version', `${label}: ${undecided.join('; ')}.`, 'Ask IT whether this release is supported.');
  }
  const applied = [kernelMinimum && `kernel ≥ ${kernelMinimum}`, distroMinimum && `${distroId} ≥ ${distroMinimum}`]
    .filter(Boolean)
    .join(', ');
  return pass('os-version', applied ? `${label} (required: ${applied}).` : `${label} (no minimum version is set).`);
}

interface BlockDevice {
  readonly name: string;
  readonly type: string;
  readonly fstype: string | null;
  readonly mountpoints: readonly string[];
  readonly children: readonly BlockDevice[];
}

function toBlockDevice(value: unknown): BlockDevice | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as Record<string, unknown>;
  if (typeof record.name !== 'string' || typeof record.type !== 'string') return undefined;
  const mounts = Array.isArray(record.mountpoints)
    ? record.mountpoints.filter((m): m is string => typeof m === 'string')
    : typeof record.mountpoint === 'string'
      ? [record.mountpoint]
      : [];
  const children = Array.isArray(record.children)
    ? record.children.map(toBlockDevice).filter((c): c is BlockDevice => c !== undefined)
    : [];
  return {
    name: record.name,
    type: record.type,
    fstype: typeof record.fstype === 'string' ? record.fstype : null,
    mountpoints: mounts,
    children,
  };
}

function findRootPath(
  devices: readonly BlockDevice[],
  ancestors: readonly BlockDevice[] = [],
): BlockDevice[] | undefined {
  for (const device of devices) {
    const path = [...ancestors, device];
    if (device.mountpoints.includes('/')) return path;
    const below = findRootPath(device.children, path);
    if (below) return below;
  }
  return undefined;
}

const DISK_FIX =
  'Encrypt the system disk with LUKS (this usually means reinstalling with "Encrypt the new installation" selected); ask IT for help before you start.';

/**
 * Disk encryption from `lsblk -J`: passes when the root filesystem sits on a dm-crypt (LUKS) volume.
 */
export function parseLsblk(result: CommandResult): PostureCheck {
  if (notRunnable(result) || result.exitCode !== 0) {
    return unknown(
      'disk-encryption',
      `Disk layout could not be read: ${describeFailure('lsblk', result)}.`,
      'Make sure lsblk (util-linux) is installed, then check again.',
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(result.stdout);
  } catch {
    return unknown(
      'disk-encryption',
      `lsblk gave output that is not JSON: "${truncate(result.stdout.trim(), 80)}".`,
      'Check again; if this persists, send IT a diagnostics bundle.',
    );
  }
  const list = (parsed as { blockdevices?: unknown }).blockdevices;
  const devices = Array.isArray(list) ? list.map(toBlockDevice).filter((d): d is BlockDevice => d !== undefined) : [];
  const path = findRootPath(devices);
  if (!path) {
    return unknown(
      'disk-encryption',
      'The root filesystem is not on a block device lsblk lists (ZFS, a network or container filesystem), so its encryption cannot be checked.',
      'Ask IT whether this kind of installation is supported.',
    );
  }
  const chain = path.map((d) => d.name).join(' → ');
  const crypt = path.find((d) => d.type === 'crypt' || d.fstype === 'crypto_LUKS');
  if (crypt) return pass('disk-encryption', `The root filesystem is on an encrypted volume (${chain}).`);
  return fail('disk-encryption', `The root filesystem is not encrypted (${chain}).`, DISK_FIX);
}

/** The desktop environment the session runs, from `XDG_CURRENT_DESKTOP` and friends. */
export function detectDesktop(env: Readonly<Record<string, string | undefined>>): 'gnome' | 'kde' | 'other' | 'none' {
  const raw = env.XDG_CURRENT_DESKTOP || env.XDG_SESSION_DESKTOP || env.DESKTOP_SESSION || '';
  const names = raw
    .toLowerCase()
    .split(':')
    .map((n) => n.trim())
    .filter(Boolean);
  if (names.length === 0) return 'none';
  if (names.some((n) => n === 'gnome' || n === 'unity' || n === 'ubuntu' || n.startsWith('gnome-'))) return 'gnome';
  if (names.some((n) => n === 'kde' || n === 'plasma')) return 'kde';
  return 'other';
}

function gsettingsValue(result: CommandResult): string | undefined {
  if (notRunnable(result) || result.exitCode !== 0) return undefined;
  const value = result.stdout.trim();
  return value.length > 0 && !value.includes('\n') ? value : undefined;
}

const GNOME_LOCK_FIX =
  'Open Settings → Privacy → Screen Lock, turn on "Automatic Screen Lock" and set "Blank Screen Delay" to a few minutes.';

/**
 * GNOME screen lock from `gsettings`: lock enabled, an idle delay, and not disabled by lockdown.
 */
export function parseGnomeScreenLock(
  lockEnabled: CommandResult,
  idleDelay: CommandResult,
  lockDisabled: CommandResult,
): PostureCheck {
  const enabled = gsettingsValue(lockEnabled);
  const idle = gsettingsValue(idleDelay);
  const disabled = gsettingsValue(lockDisabled);
  const idleSeconds = idle ? /^(?:uint32\s+)?(\d+)$/.exec(idle)?.[1] : undefined;
  if (
    !['true', 'false'].includes(enabled ?? '') ||
    idleSeconds === undefined ||
    !['true', 'false'].includes(disabled ?? '')
  ) {
    const failed = [
      ['lock-enabled', lockEnabled],
      ['idle-delay', idleDelay],
      ['disable-lock-screen', lockDisabled],
    ] as const;
    const reasons = failed
      .filter(([, r]) => gsettingsValue(r) === undefined)
      .map(([key, r]) => describeFailure(`gsettings get … ${key}`, r));
    const detail = reasons.length > 0 ? reasons.join('; ') : 'gsettings answered in an unexpected form';
    return unknown('screen-lock', `The GNOME screen-lock settings could not be read: ${detail}.`, GNOME_LOCK_FIX);
  }
  if (disabled === 'true') {
    return fail(
      'screen-lock',
      'Locking the screen is disabled (org.gnome.desktop.lockdown disable-lock-screen).',
      GNOME_LOCK_FIX,
    );
  }
  if (enabled !== 'true') return fail('screen-lock', 'Automatic screen lock is turned off.', GNOME_LOCK_FIX);
  const seconds = Number(idleSeconds);
  if (seconds === 0) {
    return fail('screen-lock', 'The screen never blanks when idle, so it never locks by itself.', GNOME_LOCK_FIX);
  }
  return pass('screen-lock', `The screen locks after ${seconds} s of inactivity.`);
}

const KDE_LOCK_FIX =
  'Open System Settings → Screen Locking, turn on "Lock screen automatically" and choose a delay of a few minutes.';

/**
 * KDE Plasma screen lock from `kreadconfig` (`kscreenlockerrc` Daemon Autolock and Timeout in minutes).
 */
export function parseKdeScreenLock(autolock: CommandResult, timeout: CommandResult): PostureCheck {
  const auto = gsettingsValue(autolock);
  const minutes = gsettingsValue(timeout);
  if (!['true', 'false'].includes(auto ?? '') || !/^\d+$/.test(minutes ?? '')) {
    return unknown(
      'screen-lock',
      `The KDE screen-lock settings could not be read: ${describeFailure('kreadconfig', auto === undefined ? autolock : timeout)}.`,
      KDE_LOCK_FIX,
    );
  }
  if (auto !== 'true') return fail('screen-lock', 'Automatic screen locking is turned off.', KDE_LOCK_FIX);
  if (Number(minutes) === 0) return fail('screen-lock', 'The screen-lock timeout is 0 (never).', KDE_LOCK_FIX);
  return pass('screen-lock', `The screen locks after ${minutes} min of inactivity.`);
}

/** One source's view of the firewall; several are combined by {@link combineFirewallEvidence}. */
export interface FirewallEvidence {
  readonly source: string;
  readonly status: 'pass' | 'fail' | 'unknown';
  readonly detail: string;
}

/** `firewall-cmd --state`: `running` or `not running`. */
export function parseFirewalldState(result: CommandResult): FirewallEvidence {
  const source = 'firewalld';
  if (notRunnable(result)) return { source, status: 'unknown', detail: 'firewall-cmd is not installed' };
  const text = `${result.stdout}\n${result.stderr}`.trim();
  if (/^running$/m.test(text) && result.exitCode === 0)
    return { source, status: 'pass', detail: 'firewalld is running' };
  if (/^not running$/m.test(text)) return { source, status: 'fail', detail: 'firewalld is installed but not running' };
  return { source, status: 'unknown', detail: describeFailure('firewall-cmd --state', result) };
}

/** `ufw status`: `Status: active` / `Status: inactive`; needs root on most systems. */
export function parseUfwStatus(result: CommandResult): FirewallEvidence {
  const source = 'ufw';
  if (notRunnable(result)) return { source, status: 'unknown', detail: 'ufw is not installed' };
  const status = /^Status:\s*(active|inactive)\s*$/m.exec(result.stdout)?.[1];
  if (status === 'active' && result.exitCode === 0) return { source, status: 'pass', detail: 'ufw is active' };
  if (status === 'inactive') return { source, status: 'fail', detail: 'ufw is installed but inactive' };
  return { source, status: 'unknown', detail: describeFailure('ufw status', result) };
}

/** `/etc/ufw/ufw.conf` (readable without root): `ENABLED=yes` means ufw starts with the system. */
export function parseUfwConf(result: CommandResult): FirewallEvidence {
  const source = 'ufw.conf';
  if (notRunnable(result) || result.exitCode !== 0) {
    return { source, status: 'unknown', detail: describeFailure('cat /etc/ufw/ufw.conf', result) };
  }
  const enabled = /^\s*ENABLED\s*=\s*"?(yes|no)"?\s*$/im.exec(result.stdout)?.[1]?.toLowerCase();
  if (enabled === 'yes') return { source, status: 'pass', detail: 'ufw is enabled (ENABLED=yes in /etc/ufw/ufw.conf)' };
  if (enabled === 'no') return { source, status: 'fail', detail: 'ufw is disabled (ENABLED=no in /etc/ufw/ufw.conf)' };
  return { source, status: 'unknown', detail: '/etc/ufw/ufw.conf has no ENABLED setting' };
}

/**
 * `nft list ruleset`: passes when a chain on the input hook drops by policy or has a drop/reject rule.
 */
export function parseNftRuleset(result: CommandResult): FirewallEvidence {
  const source = 'nftables';
  if (notRunnable(result)) return { source, status: 'unknown', detail: 'nft is not installed' };
  if (result.exitCode !== 0) return { source, status: 'unknown', detail: describeFailure('nft list ruleset', result) };
  let inChain = false;
  let isInput = false;
  let filtering = false;
  let inputChains = 0;
  for (const line of result.stdout.split(/\r?\n/)) {
    const trimmed = line.trim();
    if (/^chain\s+\S+\s*\{$/.test(trimmed)) {
      inChain = true;
      isInput = false;
      continue;
    }
    if (!inChain) continue;
    if (trimmed === '}') {
      inChain = false;
      continue;
    }
    if (/\bhook\s+input\b/.test(trimmed)) {
      isInput = true;
      inputChains++;
      if (/\bpolicy\s+drop\s*;/.test(trimmed)) filtering = true;
      continue;
    }
    if (isInput && /\b(drop|reject)\b/.test(trimmed)) filtering = true;
  }
  if (filtering) return { source, status: 'pass', detail: 'nftables filters incoming connections' };
  if (inputChains > 0) return { source, status: 'fail', detail: 'nftables accepts every incoming connection' };
  if (result.stdout.trim() === '') return { source, status: 'fail', detail: 'no nftables rules are loaded' };
  return { source, status: 'fail', detail: 'nftables has no chain filtering incoming connections' };
}

const FIREWALL_FIX =
  'Turn on the firewall: "sudo ufw enable" on Ubuntu and Debian, or "sudo systemctl enable --now firewalld" on Fedora and RHEL.';

/**
 * Combines what each firewall tool said: any positive source passes, else any negative one fails,
 * else `unknown` (no tool could tell).
 */
export function combineFirewallEvidence(evidence: readonly FirewallEvidence[]): PostureCheck {
  const passing = evidence.find((e) => e.status === 'pass');
  if (passing) return pass('firewall', `${capitalize(passing.detail)}.`);
  const failing = evidence.filter((e) => e.status === 'fail');
  if (failing.length > 0)
    return fail('firewall', `${capitalize(failing.map((e) => e.detail).join('; '))}.`, FIREWALL_FIX);
  const detail = evidence.length > 0 ? evidence.map((e) => e.detail).join('; ') : 'no firewall tool was found';
  return unknown(
    'firewall',
    `The firewall state could not be read: ${detail}.`,
    'Install and enable ufw or firewalld so the firewall can be checked, or ask IT.',
  );
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

const MANAGED_FIX = 'This device is not managed by IT. Ask IT to enrol it, or use a managed device.';

/**
 * Managed device on Linux: IT's policy file for Clearance, owned by root and writable by no one else
 * (a user cannot create it), or a directory domain join (`realm list`, or SSSD's `sssctl domain-list`).
 */
export function parseLinuxManaged(
  realm: CommandResult,
  trustedPolicyFilePresent: boolean,
  sssd?: CommandResult,
): PostureCheck {
  if (trustedPolicyFilePresent) {
    return pass('managed', 'IT’s policy file for Clearance is installed, owned by root.');
  }
  if (sssd && !notRunnable(sssd) && sssd.exitCode === 0) {
    const domains = sssd.stdout
      .split(/\r?\n/)
      .map((line) => line.trim())
      .filter((line) => /^[A-Za-z0-9][A-Za-z0-9.-]*$/.test(line));
    if (domains.length > 0) return pass('managed', `The device is joined to ${domains.join(', ')} (SSSD).`);
  }
  if (!notRunnable(realm) && realm.exitCode === 0) {
    const domain = /^\s*domain-name:\s*(\S+)/m.exec(realm.stdout)?.[1];
    const configured = /^\s*configured:\s*(\S+)/m.exec(realm.stdout)?.[1];
    if (domain && configured && configured !== 'no')
      return pass('managed', `The device is joined to the domain ${domain}.`);
  }
  const realmNote = notRunnable(realm) ? 'realmd is not installed' : 'the device is not joined to a domain';
  return fail('managed', `No managed settings are installed and ${realmNote}.`, MANAGED_FIX);
}

/** What the Linux checks need besides the command runner. */
export interface LinuxCheckInput {
  readonly commands: CommandRunner;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly minOsVersions?: Readonly<Record<string, string>>;
  readonly trustedPolicyFilePresent: boolean;
  readonly timeoutMs?: number;
}

type CommandName = keyof typeof linuxCommands;

/**
 * Runs the Linux checks for real (every platform-specific one but app integrity) in parallel.
 */
export async function runLinuxChecks(input: LinuxCheckInput): Promise<PostureCheck[]> {
  const run = (name: CommandName) => {
    const [command, args] = linuxCommands[name];
    return input.commands.run(command, args, { timeoutMs: input.timeoutMs ?? 5000 });
  };
  const osVersion = async () => checkLinuxOsVersion(await run('osRelease'), await run('kernel'), input.minOsVersions);
  const disk = async () => {
    const modern = await run('lsblk');
    if (!notRunnable(modern) && modern.exitCode !== 0 && /unknown column/i.test(modern.stderr)) {
      return parseLsblk(await run('lsblkLegacy'));
    }
    return parseLsblk(modern);
  };
  const screenLock = async () => {
    const desktop = detectDesktop(input.env);
    if (desktop === 'gnome') {
      return parseGnomeScreenLock(
        await run('gnomeLockEnabled'),
        await run('gnomeIdleDelay'),
        await run('gnomeLockDisabled'),
      );
    }
    if (desktop === 'kde') {
      const autolock6 = await run('kdeAutolock6');
      if (!notRunnable(autolock6)) return parseKdeScreenLock(autolock6, await run('kdeTimeout6'));
      return parseKdeScreenLock(await run('kdeAutolock5'), await run('kdeTimeout5'));
    }
    const what =
      desktop === 'none'
        ? 'No desktop session was detected (XDG_CURRENT_DESKTOP is not set)'
        : `The screen lock of this desktop (${input.env.XDG_CURRENT_DESKTOP ?? 'unknown'}) cannot be checked yet`;
    return unknown('screen-lock', `${what}.`, 'Use GNOME or KDE Plasma with automatic screen lock, or ask IT.');
  };
  const firewall = async () => {
    const [firewalld, ufw, nft] = await Promise.all([run('firewalld'), run('ufw'), run('nft')]);
    const evidence = [parseFirewalldState(firewalld), parseUfwStatus(ufw), parseNftRuleset(nft)];
    const ufwNeedsRoot = !notRunnable(ufw) && evidence[1]?.status === 'unknown';
    if (ufwNeedsRoot) evidence.push(parseUfwConf(await run('ufwConf')));
    return combineFirewallEvidence(evidence);
  };
  const managed = async () => parseLinuxManaged(await run('realm'), input.trustedPolicyFilePresent, await run('sssd'));
  return Promise.all([osVersion(), disk(), screenLock(), firewall(), managed()]);
}
