import type { PostureCheck } from '../../../shared/device';
import { fail, pass } from './check';

/** How the app was started, as the shell reports it. */
export interface AppLaunch {
  /** Electron `app.isPackaged`: false for a development build run from source. */
  readonly packaged: boolean;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
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
 * App integrity: a packaged build started without debugging switches or code-injecting environment.
 *
 * That the packaged files are unmodified is enforced at start by Electron's fuses
 * (embedded ASAR integrity, only-load-from-ASAR), so a modified app does not get this far.
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
  if (problems.length > 0) {
    return fail(
      'app-integrity',
      `Clearance is not running as installed: ${problems.join('; ')}.`,
      'Quit Clearance and start the installed app from the applications menu, without extra options.',
    );
  }
  return pass('app-integrity', 'The installed app is running without debugging switches.');
}
