import type { PostureCheck } from '../../../shared/device';
import { fail, pass } from './check';
import { wrongFuses, type FuseReading } from './fuses';

/** How the app was started, as the shell reports it. */
export interface AppLaunch {
  /** Electron `app.isPackaged`: false for a development build run from source. */
  readonly packaged: boolean;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The fuses read back from the running Electron binary (packaged builds only). */
  readonly fuses?: FuseReading;
}

/** Command-line switches that open the main process or a page to a debugger or automation. */
const DEBUG_SWITCHES = [
  '--inspect',
  '--inspect-brk',
  '--inspect-port',
  '--inspect-publish-uid',
  '--debug',
  '--debug-brk',
  '--remote-debugging-port',
  '--remote-debugging-pipe',
  '--remote-allow-origins',
  '--js-flags',
  '--require',
] as const;

/** Environment variables that turn the app into a plain Node process or inject code into it. */
const DEBUG_ENV = ['ELECTRON_RUN_AS_NODE', 'NODE_OPTIONS'] as const;

/**
 * App integrity: a packaged build started without debugging switches or code-injecting environment,
 * whose Electron fuses (read back from its own executable) are in the state electron-builder.yml asks.
 *
 * It reports only what it observes: the launch, and the fuses when they could be read. That the
 * archive is unmodified is Electron's own check at start (embedded ASAR integrity, macOS and
 * Windows); this check sees only that the fuse requiring it is on.
 */
export function checkAppIntegrity(launch: AppLaunch): PostureCheck {
  const problems: string[] = [];
  if (!launch.packaged) problems.push('it is a development build, not the installed app');
  const switches = launch.argv
    .map((arg) => arg.split('=')[0] ?? arg)
    .filter((name) => DEBUG_SWITCHES.some((s) => name === s));
  if (switches.length > 0)
    problems.push(`it was started with debugging switches (${[...new Set(switches)].join(', ')})`);
  const variables = DEBUG_ENV.filter((name) => (launch.env[name] ?? '') !== '');
  if (variables.length > 0) problems.push(`debugging environment variables are set (${variables.join(', ')})`);
  const fuses = launch.packaged ? launch.fuses : undefined;
  if (fuses?.readable) {
    const wrong = wrongFuses(fuses);
    if (wrong.length > 0) problems.push(`its Electron fuses are not as shipped (${wrong.join('; ')})`);
  }
  if (problems.length > 0) {
    return fail(
      'app-integrity',
      `Clearance is not running as installed: ${problems.join('; ')}.`,
      fuses?.readable && wrongFuses(fuses).length > 0
        ? 'Reinstall Clearance from the package IT provides.'
        : 'Quit Clearance and start the installed app from the applications menu, without extra options.',
    );
  }
  const observed = 'The installed app is running without debugging switches or code-injecting variables';
  if (fuses?.readable) {
    return pass(
      'app-integrity',
      `${observed}; its Electron fuses refuse run-as-Node, NODE_OPTIONS and --inspect, and it loads only its integrity-checked app.asar.`,
    );
  }
  return pass('app-integrity', `${observed}. Its Electron fuses were not checked${fuses ? ` (${fuses.reason})` : ''}.`);
}
