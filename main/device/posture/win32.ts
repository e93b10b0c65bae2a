import type { PostureCheck } from '../../../shared/device';
import type { CommandResult, CommandRunner } from '../../platform';
import { describeFailure, fail, notRunnable, pass, unknown, versionMeetsMinimum } from './check';
import { parseRegQuery as parseRegistryKeys, REG_EXE } from '../../config/windows';

const POLICY_SYSTEM_KEY = 'HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System';
const DESKTOP_KEY = 'HKCU\\Control Panel\\Desktop';
const DESKTOP_POLICY_KEY = 'HKCU\\Software\\Policies\\Microsoft\\Windows\\Control Panel\\Desktop';

/** The shell property a standard user can read for BitLocker (manage-bde needs administrator rights). */
const BITLOCKER_PROPERTY_SCRIPT = (drive: string) =>
  `(New-Object -ComObject Shell.Application).NameSpace('${drive}').Self.ExtendedProperty('System.Volume.BitLockerProtection')`;

/** The Windows tools the checks run, as `[command, args]`, for the system drive `drive` (`C:`). */
export function win32Commands(drive: string) {
  return {
    ver: ['cmd.exe', ['/d', '/c', 'ver']],
    manageBde: ['manage-bde.exe', ['-status', drive]],
    bitlockerProperty: [
      'powershell.exe',
      ['-NoProfile', '-NonInteractive', '-Command', BITLOCKER_PROPERTY_SCRIPT(drive)],
    ],
    dsregcmd: ['dsregcmd.exe', ['/status']],
    enrollments: [REG_EXE, ['query', 'HKLM\\SOFTWARE\\Microsoft\\Enrollments', '/s']],
    firewall: ['netsh.exe', ['advfirewall', 'show', 'allprofiles', 'state']],
    inactivityPolicy: ['reg.exe', ['query', POLICY_SYSTEM_KEY, '/v', 'InactivityTimeoutSecs']],
    desktop: ['reg.exe', ['query', DESKTOP_KEY]],
    desktopPolicy: ['reg.exe', ['query', DESKTOP_POLICY_KEY]],
  } as const satisfies Record<string, readonly [string, readonly string[]]>;
}

/**
 * OS version from `ver` (`Microsoft Windows [Version 10.0.22631.4460]`) against `minimum`.
 */
export function parseWindowsVer(result: CommandResult, minimum?: string): PostureCheck {
  const version = /\[Version\s+(\d+(?:\.\d+)+)\]/i.exec(result.stdout)?.[1];
  if (notRunnable(result) || result.exitCode !== 0 || !version) {
    return unknown(
      'os-version',
      `The Windows version could not be read: ${describeFailure('ver', result)}.`,
      'Check again; if this persists, send IT a diagnostics bundle.',
    );
  }
  const build = Number(version.split('.')[2] ?? 0);
  const label = `${version.startsWith('10.0.') && build >= 22000 ? 'Windows 11' : 'Windows'} ${version}`;
  if (!minimum) return pass('os-version', `${label} (no minimum version is set).`);
  const verdict = versionMeetsMinimum(version, minimum);
  if (verdict === 'pass') return pass('os-version', `${label} (required: ${minimum} or later).`);
  if (verdict === 'fail') {
    return fail(
      'os-version',
      `${label} is older than the required ${minimum}.`,
      'Open Settings → Windows Update, install all updates and restart.',
    );
  }
  return unknown(
    'os-version',
    `${label} could not be compared with the required ${minimum}.`,
    'Ask IT whether this release is supported.',
  );
}

/** `Key: value` fields of a tool's report, keyed by the trimmed name. */
function fields(text: string, separator: RegExp): ReadonlyMap<string, string> {
  const map = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const match = separator.exec(line);
    if (match?.[1] && match[2] !== undefined) map.set(match[1].trim(), match[2].trim());
  }
  return map;
}

const BITLOCKER_FIX =
  'Turn on BitLocker for the system drive (Settings → Privacy & security → Device encryption), or ask IT.';

/**
 * Disk encryption from `manage-bde -status C:`: fully (or used-space) encrypted with protection on.
 */
export function parseManageBdeStatus(result: CommandResult): PostureCheck {
  const report = fields(result.stdout, /^\s{2,}([A-Za-z ]+?):\s+(.*)$/);
  const conversion = report.get('Conversion Status');
  const protection = report.get('Protection Status');
  if (notRunnable(result) || !conversion || !protection) {
    return unknown(
      'disk-encryption',
      `The BitLocker state could not be read: ${describeFailure('manage-bde -status', result)}.`,
      BITLOCKER_FIX,
    );
  }
  const method = report.get('Encryption Method');
  if (/^(Fully|Used Space Only) Encrypted$/i.test(conversion) && /^Protection On$/i.test(protection)) {
    return pass(
      'disk-encryption',
      `BitLocker protects the system drive (${conversion}${method ? `, ${method}` : ''}).`,
    );
  }
  if (/in progress/i.test(conversion) && /^Encryption/i.test(conversion)) {
    return fail(
      'disk-encryption',
      `BitLocker is still encrypting the system drive (${report.get('Percentage Encrypted') ?? 'in progress'}).`,
      'Keep the computer on until BitLocker finishes, then check again.',
    );
  }
  if (/Encrypted$/i.test(conversion)) {
    return fail(
      'disk-encryption',
      `The system drive is encrypted but BitLocker protection is off (${protection}).`,
      'Resume BitLocker protection (Control Panel → BitLocker Drive Encryption → Resume protection), or ask IT.',
    );
  }
  return fail(
    'disk-encryption',
    `BitLocker does not protect the system drive (${conversion}, ${protection}).`,
    BITLOCKER_FIX,
  );
}

/**
 * Disk encryption from the shell property `System.Volume.BitLockerProtection` (readable without admin rights).
 *
 * Values: 1 on, 2 off, 3 encrypting, 4 decrypting, 5 suspended, 6 on and locked, 8 waiting for activation.
 */
export function parseBitLockerProtectionProperty(result: CommandResult): PostureCheck {
  const value = result.stdout.trim();
  if (notRunnable(result) || result.exitCode !== 0 || !/^\d+$/.test(value) || value === '0') {
    return unknown(
      'disk-encryption',
      `The BitLocker state could not be read: ${value === '0' ? 'Windows reports the system drive cannot use BitLocker' : describeFailure('BitLockerProtection', result)}.`,
      BITLOCKER_FIX,
    );
  }
  const states: Record<string, string> = {
    '2': 'BitLocker is off for the system drive',
    '3': 'BitLocker is still encrypting the system drive',
    '4': 'BitLocker is being turned off (decrypting)',
    '5': 'BitLocker protection is suspended',
    '8': 'BitLocker is waiting for activation (no key protector yet)',
  };
  if (value === '1' || value === '6') return pass('disk-encryption', 'BitLocker protects the system drive.');
  return fail('disk-encryption', `${states[value] ?? `BitLocker reports state ${value}`}.`, BITLOCKER_FIX);
}

/**
 * The MDM enrolment in `reg query HKLM\SOFTWARE\Microsoft\Enrollments /s`: an enrolment whose
 * `ProviderID` is `MS DM Server` (Intune and other MDMs) in `EnrollmentState` 1 (enrolled); its UPN.
 */
export function parseMdmEnrollments(result: CommandResult | undefined): {
  readonly enrolled: boolean;
  readonly upn?: string;
} {
  if (!result || notRunnable(result) || result.exitCode !== 0) return { enrolled: false };
  for (const key of parseRegistryKeys(result.stdout)) {
    const value = (name: string) => key.values.find((v) => v.name.toLowerCase() === name.toLowerCase())?.data;
    if (value('ProviderID') === 'MS DM Server' && /^0x0*1$/i.test(value('EnrollmentState') ?? '')) {
      const upn = value('UPN');
      return upn ? { enrolled: true, upn } : { enrolled: true };
    }
  }
  return { enrolled: false };
}

/**
 * Managed device from real signals: `dsregcmd /status` (joined to Entra ID, an Active Directory domain
 * or an enterprise) or an MDM enrolment in the registry; never from the presence of a file.
 */
export function parseDsregcmdStatus(result: CommandResult, enrollments?: CommandResult): PostureCheck {
  const mdmEnrolment = parseMdmEnrollments(enrollments);
  const report = fields(result.stdout, /^\s*([A-Za-z]+)\s:\s?(.*)$/);
  const azure = report.get('AzureAdJoined');
  const domain = report.get('DomainJoined');
  const enterprise = report.get('EnterpriseJoined');
  if (notRunnable(result) || result.exitCode !== 0 || !azure || !domain) {
    if (mdmEnrolment.enrolled) {
      return pass('managed', `The computer is enrolled in MDM${mdmEnrolment.upn ? ` (${mdmEnrolment.upn})` : ''}.`);
    }
    return unknown(
      'managed',
      `The device join state could not be read: ${describeFailure('dsregcmd /status', result)}.`,
      'Ask IT to check this computer’s enrollment.',
    );
  }
  const joins = [
    azure === 'YES' && `Microsoft Entra ID${report.get('TenantName') ? ` (${report.get('TenantName')})` : ''}`,
    domain === 'YES' && `the domain ${report.get('DomainName') ?? ''}`.trim(),
    enterprise === 'YES' && 'an enterprise directory',
  ].filter((j): j is string => Boolean(j));
  const mdm = report.get('MdmUrl');
  if (joins.length > 0) {
    const enrolled = mdm || mdmEnrolment.enrolled;
    return pass(
      'managed',
      `The computer is joined to ${joins.join(' and ')}${enrolled ? ', with MDM enrollment' : ''}.`,
    );
  }
  if (mdmEnrolment.enrolled) {
    return pass('managed', `The computer is enrolled in MDM${mdmEnrolment.upn ? ` (${mdmEnrolment.upn})` : ''}.`);
  }
  const registered = report.get('WorkplaceJoined') === 'YES';
  return fail(
    'managed',
    registered
      ? 'The computer is only registered (a personal device), not joined to the organisation.'
      : 'The computer is not joined to the organisation.',
    'Ask IT to join this computer to the organisation (Settings → Accounts → Access work or school), then check again.',
  );
}

/**
 * Firewall from `netsh advfirewall show allprofiles state`: every profile (domain, private, public) on.
 */
export function parseNetshFirewall(result: CommandResult): PostureCheck {
  const states = new Map<string, string>();
  let profile: string | undefined;
  for (const line of result.stdout.split(/\r?\n/)) {
    const header = /^(Domain|Private|Public) Profile Settings:/.exec(line.trim());
    if (header) {
      profile = header[1];
      continue;
    }
    const state = /^State\s+(ON|OFF)\s*$/i.exec(line.trim());
    if (state && profile && !states.has(profile)) states.set(profile, state[1]!.toUpperCase());
  }
  if (notRunnable(result) || states.size !== 3) {
    return unknown(
      'firewall',
      `The Windows Defender Firewall state could not be read: ${describeFailure('netsh advfirewall', result)}.`,
      'Check again; if this persists, send IT a diagnostics bundle.',
    );
  }
  const off = [...states].filter(([, s]) => s === 'OFF').map(([p]) => p.toLowerCase());
  if (off.length > 0) {
    return fail(
      'firewall',
      `Windows Defender Firewall is off for the ${off.join(', ')} profile${off.length > 1 ? 's' : ''}.`,
      'Open Windows Security → Firewall & network protection and turn the firewall on for every network type.',
    );
  }
  return pass('firewall', 'Windows Defender Firewall is on for the domain, private and public profiles.');
}

interface RegistryRead {
  readonly values: ReadonlyMap<string, string>;
  /** False when `reg` could not run or failed for a reason other than a missing key or value. */
  readonly readable: boolean;
  readonly problem?: string;
}

/** Parses `reg query` output into values (REG_DWORD as decimal); a missing key is an empty, readable result. */
export function parseRegQuery(result: CommandResult): RegistryRead {
  if (notRunnable(result)) return { values: new Map(), readable: false, problem: describeFailure('reg query', result) };
  if (result.exitCode !== 0) {
    const missing = /unable to find the specified registry key or value/i.test(`${result.stdout}\n${result.stderr}`);
    return missing
      ? { values: new Map(), readable: true }
      : { values: new Map(), readable: false, problem: describeFailure('reg query', result) };
  }
  const values = new Map<string, string>();
  for (const line of result.stdout.split(/\r?\n/)) {
    const match =
      /^\s+(\S(?:.*?\S)?)\s{2,}(REG_[A-Z_]+)\s{2,}(.*?)\s*$/.exec(line) ??
      /^\s+(\S(?:.*?\S)?)\s{2,}(REG_[A-Z_]+)\s*$/.exec(line);
    if (!match?.[1] || !match[2]) continue;
    const raw = match[3] ?? '';
    const value = match[2] === 'REG_DWORD' && /^0x[0-9a-f]+$/i.test(raw) ? String(parseInt(raw, 16)) : raw;
    values.set(match[1].toLowerCase(), value);
  }
  return { values, readable: true };
}

const WINDOWS_LOCK_FIX =
  'Ask IT to set the "Interactive logon: Machine inactivity limit" policy, or choose a screen saver with "On resume, display logon screen" (Settings → Personalization → Lock screen → Screen saver).';

/**
 * Screen lock from the registry: the machine inactivity limit, or a password-protected screen saver
 * (group-policy values over the user's own).
 */
export function parseWindowsScreenLock(
  inactivityPolicy: CommandResult,
  desktop: CommandResult,
  desktopPolicy: CommandResult,
): PostureCheck {
  const policy = parseRegQuery(inactivityPolicy);
  const limit = Number(policy.values.get('inactivitytimeoutsecs') ?? 0);
  if (limit > 0) return pass('screen-lock', `Windows locks after ${limit} s of inactivity (machine inactivity limit).`);
  const user = parseRegQuery(desktop);
  const enforced = parseRegQuery(desktopPolicy);
  const unreadable = [policy, user, enforced].filter((r) => !r.readable);
  if (unreadable.length > 0) {
    return unknown(
      'screen-lock',
      `The screen-lock settings could not be read: ${unreadable.map((r) => r.problem).join('; ')}.`,
      WINDOWS_LOCK_FIX,
    );
  }
  const get = (name: string) => enforced.values.get(name) ?? user.values.get(name);
  const active = get('screensaveactive') === '1';
  const secure = get('screensaverissecure') === '1';
  const timeout = Number(get('screensavetimeout') ?? 0);
  if (active && secure && timeout > 0) {
    return pass('screen-lock', `The screen saver starts after ${timeout} s and requires sign-in.`);
  }
  const missing = [
    !active && 'no screen saver is active',
    active && !secure && 'the screen saver does not require sign-in',
  ]
    .filter(Boolean)
    .join(', ');
  return fail(
    'screen-lock',
    `No inactivity lock is set: there is no machine inactivity limit and ${missing || 'the screen saver has no timeout'}.`,
    WINDOWS_LOCK_FIX,
  );
}

/** What the Windows checks need besides the command runner. */
export interface Win32CheckInput {
  readonly commands: CommandRunner;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly minOsVersions?: Readonly<Record<string, string>>;
  /** Not a signal on Windows (join and MDM enrolment are); accepted so every platform takes the same input. */
  readonly trustedPolicyFilePresent?: boolean;
  readonly timeoutMs?: number;
}

/** Runs the Windows checks (every platform-specific one but app integrity) in parallel. */
export async function runWin32Checks(input: Win32CheckInput): Promise<PostureCheck[]> {
  const drive = /^[A-Za-z]:$/.test(input.env.SystemDrive ?? '') ? (input.env.SystemDrive as string) : 'C:';
  const commands = win32Commands(drive);
  const run = (name: keyof typeof commands) => {
    const [command, args] = commands[name];
    return input.commands.run(command, args, { timeoutMs: input.timeoutMs ?? 10_000 });
  };
  const disk = async () => {
    const fromManageBde = parseManageBdeStatus(await run('manageBde'));
    if (fromManageBde.status !== 'unknown') return fromManageBde;
    const fromProperty = parseBitLockerProtectionProperty(await run('bitlockerProperty'));
    return fromProperty.status !== 'unknown' ? fromProperty : fromManageBde;
  };
  return Promise.all([
    run('ver').then((r) => parseWindowsVer(r, input.minOsVersions?.win32)),
    disk(),
    Promise.all([run('inactivityPolicy'), run('desktop'), run('desktopPolicy')]).then(([a, b, c]) =>
      parseWindowsScreenLock(a, b, c),
    ),
    run('firewall').then(parseNetshFirewall),
    Promise.all([run('dsregcmd'), run('enrollments')]).then(([join, mdm]) => parseDsregcmdStatus(join, mdm)),
  ]);
}
