import type { PostureCheck } from '../../../shared/device';
import type { CommandResult, CommandRunner } from '../../platform';
import { allOutput, describeFailure, fail, notRunnable, pass, unknown, versionMeetsMinimum } from './check';

/** The macOS tools the checks run, as `[command, args]`. */
export const darwinCommands = {
  swVers: ['sw_vers', []],
  fdesetup: ['fdesetup', ['status']],
  enrollment: ['profiles', ['status', '-type', 'enrollment']],
  firewall: ['/usr/libexec/ApplicationFirewall/socketfilterfw', ['--getglobalstate']],
  screenLock: ['sysadminctl', ['-screenLock', 'status']],
} as const satisfies Record<string, readonly [string, readonly string[]]>;

/** The longest delay between the screen saver starting and the screen locking that still passes. */
export const MAX_SCREEN_LOCK_DELAY_SECONDS = 900;

/**
 * OS version from `sw_vers` against `minimum` (discovery's `min_os_versions.darwin`).
 */
export function parseSwVers(result: CommandResult, minimum?: string): PostureCheck {
  const version = /^ProductVersion:\s*(\S+)\s*$/m.exec(result.stdout)?.[1];
  if (notRunnable(result) || result.exitCode !== 0 || !version) {
    return unknown(
      'os-version',
      `The macOS version could not be read: ${describeFailure('sw_vers', result)}.`,
      'Check again; if this persists, send IT a diagnostics bundle.',
    );
  }
  const product = /^ProductName:\s*(.+?)\s*$/m.exec(result.stdout)?.[1] ?? 'macOS';
  const build = /^BuildVersion:\s*(\S+)\s*$/m.exec(result.stdout)?.[1];
  const label = `${product} ${version}${build ? ` (${build})` : ''}`;
  if (!minimum) return pass('os-version', `${label} (no minimum version is set).`);
  const verdict = versionMeetsMinimum(version, minimum);
  if (verdict === 'pass') return pass('os-version', `${label} (required: ${minimum} or later).`);
  if (verdict === 'fail') {
    return fail(
      'os-version',
      `${label} is older than the required ${minimum}.`,
      `Open System Settings → General → Software Update and update to macOS ${minimum} or later.`,
    );
  }
  return unknown(
    'os-version',
    `${label} could not be compared with the required ${minimum}.`,
    'Ask IT whether this release is supported.',
  );
}

const FILEVAULT_FIX = 'Open System Settings → Privacy & Security → FileVault and turn FileVault on.';

/**
 * Disk encryption from `fdesetup status`: passes only when FileVault is on and not converting.
 */
export function parseFdesetupStatus(result: CommandResult): PostureCheck {
  const text = result.stdout;
  if (notRunnable(result) || result.exitCode !== 0 || !/FileVault is (On|Off)/.test(text)) {
    return unknown(
      'disk-encryption',
      `The FileVault state could not be read: ${describeFailure('fdesetup status', result)}.`,
      FILEVAULT_FIX,
    );
  }
  const progress = /(Encryption|Decryption) in progress:.*?([\d.]+)/.exec(text);
  if (progress?.[1] === 'Decryption') {
    return fail('disk-encryption', `FileVault is being turned off (decryption ${progress[2]}% done).`, FILEVAULT_FIX);
  }
  if (progress?.[1] === 'Encryption') {
    return fail(
      'disk-encryption',
      `FileVault is still encrypting the disk (${progress[2]}% done).`,
      'Keep the Mac on power until FileVault finishes encrypting, then check again.',
    );
  }
  if (/FileVault is On\./.test(text)) return pass('disk-encryption', 'FileVault is on.');
  if (/will be enabled after the next restart/.test(text)) {
    return fail(
      'disk-encryption',
      'FileVault will be turned on at the next restart.',
      'Restart the Mac, then check again.',
    );
  }
  return fail('disk-encryption', 'FileVault is off.', FILEVAULT_FIX);
}

/**
 * Managed Mac from `profiles status -type enrollment` (MDM enrolment): never from the presence of a file.
 */
export function parseProfilesEnrollment(result: CommandResult): PostureCheck {
  const mdm = /^MDM enrollment:\s*(Yes|No)\b(.*)$/m.exec(result.stdout);
  if (notRunnable(result) || result.exitCode !== 0 || !mdm) {
    return unknown(
      'managed',
      `The MDM enrollment could not be read: ${describeFailure('profiles status -type enrollment', result)}.`,
      'Ask IT to check this Mac’s enrollment.',
    );
  }
  if (mdm[1] === 'Yes') {
    const server = /^MDM server:\s*(\S+)/m.exec(result.stdout)?.[1];
    return pass(
      'managed',
      `The Mac is enrolled in MDM${mdm[2]?.trim() ? ` ${mdm[2].trim()}` : ''}${server ? ` (${server})` : ''}.`,
    );
  }
  return fail(
    'managed',
    'The Mac is not enrolled in device management (MDM).',
    'Ask IT to enrol this Mac, then check again.',
  );
}

/**
 * Firewall from `socketfilterfw --getglobalstate`: state 1 (on) or 2 (block all) passes.
 */
export function parseSocketFilterFirewall(result: CommandResult): PostureCheck {
  const state = /\(State = (\d)\)/.exec(result.stdout)?.[1];
  if (notRunnable(result) || result.exitCode !== 0 || state === undefined) {
    return unknown(
      'firewall',
      `The firewall state could not be read: ${describeFailure('socketfilterfw --getglobalstate', result)}.`,
      'Check again; if this persists, send IT a diagnostics bundle.',
    );
  }
  if (state === '1') return pass('firewall', 'The macOS application firewall is on.');
  if (state === '2')
    return pass('firewall', 'The macOS application firewall is on and blocks all incoming connections.');
  return fail(
    'firewall',
    'The macOS application firewall is off.',
    'Open System Settings → Network → Firewall and turn the firewall on.',
  );
}

const MAC_LOCK_FIX =
  'Open System Settings → Lock Screen and set "Require password after screen saver begins or display is turned off" to "Immediately" or a few minutes.';

/**
 * Screen lock from `sysadminctl -screenLock status` (it answers on stderr, after a log prefix).
 */
export function parseSysadminctlScreenLock(result: CommandResult): PostureCheck {
  const text = allOutput(result);
  const off = /screenLock is off/i.test(text);
  const delay = /screenLock delay is (immediate|(\d+) seconds?)/i.exec(text);
  if (notRunnable(result) || (!off && !delay)) {
    return unknown(
      'screen-lock',
      `The screen-lock setting could not be read: ${describeFailure('sysadminctl -screenLock status', result)}.`,
      MAC_LOCK_FIX,
    );
  }
  if (off)
    return fail('screen-lock', 'The Mac does not ask for a password after the screen saver or sleep.', MAC_LOCK_FIX);
  if (delay?.[1]?.toLowerCase() === 'immediate') {
    return pass('screen-lock', 'A password is required immediately after the screen saver or sleep.');
  }
  const seconds = Number(delay?.[2]);
  if (seconds > MAX_SCREEN_LOCK_DELAY_SECONDS) {
    return fail(
      'screen-lock',
      `The screen locks only ${Math.round(seconds / 60)} min after the screen saver starts (at most ${MAX_SCREEN_LOCK_DELAY_SECONDS / 60} min allowed).`,
      MAC_LOCK_FIX,
    );
  }
  return pass('screen-lock', `A password is required ${seconds} s after the screen saver or sleep.`);
}

/** What the macOS checks need besides the command runner. */
export interface DarwinCheckInput {
  readonly commands: CommandRunner;
  readonly minOsVersions?: Readonly<Record<string, string>>;
  /** Not a signal on macOS (the MDM enrolment is); accepted so every platform takes the same input. */
  readonly trustedPolicyFilePresent?: boolean;
  readonly timeoutMs?: number;
}

/** Runs the macOS checks (every platform-specific one but app integrity) in parallel. */
export async function runDarwinChecks(input: DarwinCheckInput): Promise<PostureCheck[]> {
  const run = (name: keyof typeof darwinCommands) => {
    const [command, args] = darwinCommands[name];
    return input.commands.run(command, args, { timeoutMs: input.timeoutMs ?? 5000 });
  };
  return Promise.all([
    run('swVers').then((r) => parseSwVers(r, input.minOsVersions?.darwin)),
    run('fdesetup').then(parseFdesetupStatus),
    run('screenLock').then(parseSysadminctlScreenLock),
    run('firewall').then(parseSocketFilterFirewall),
    run('enrollment').then((r) => parseProfilesEnrollment(r)),
  ]);
}
