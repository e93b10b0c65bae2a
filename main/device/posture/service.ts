import { PostureCheckId, type PostureCheck } from '../../../shared/device';
import type { CommandResult, CommandRunner } from '../../platform';
import { checkAppIntegrity, type AppLaunch } from './app-integrity';
import { unknown } from './check';
import { runDarwinChecks } from './darwin';
import { runLinuxChecks } from './linux';
import { runWin32Checks } from './win32';

/** What the posture checks need from the shell and from policy. */
export interface PostureServiceOptions {
  /** `process.platform`, injected so every platform's path can be tested anywhere. */
  readonly platform: NodeJS.Platform;
  readonly commands: CommandRunner;
  /** How the app was started (app-integrity); `launch.env` also tells the Linux desktop. */
  readonly launch: AppLaunch;
  /** IT's managed settings file was found (counts as a managed device). */
  readonly trustedPolicyFilePresent: boolean;
  /**
   * Minimum OS versions (managed config merged with discovery's `min_os_versions`), read on each run:
   * `darwin`, `win32`, `linux` (kernel), or a Linux distribution's os-release `ID`.
   */
  readonly minOsVersions?: () => Readonly<Record<string, string>> | undefined;
  /** Per-command timeout; a tool that hangs answers `unknown`. */
  readonly timeoutMs?: number;
}

/** A runner that never throws: a failure to run becomes a result with `error`, so one check cannot sink the rest. */
function shielded(runner: CommandRunner): CommandRunner {
  return {
    async run(command, args, options): Promise<CommandResult> {
      try {
        return await runner.run(command, args, options);
      } catch (error) {
        return {
          exitCode: null,
          stdout: '',
          stderr: '',
          error: error instanceof Error ? error.message : String(error),
        };
      }
    },
  };
}

/**
 * Runs the device posture checks for the platform and returns one result per check id, in a fixed order.
 *
 * Never throws: a check that cannot run answers `unknown`.
 */
export class PostureService {
  private readonly commands: CommandRunner;

  constructor(private readonly options: PostureServiceOptions) {
    this.commands = shielded(options.commands);
  }

  /** Runs every check now. */
  async check(): Promise<PostureCheck[]> {
    const { platform, launch, trustedPolicyFilePresent, timeoutMs } = this.options;
    const minOsVersions = this.options.minOsVersions?.() ?? {};
    const input = { commands: this.commands, env: launch.env, minOsVersions, trustedPolicyFilePresent, timeoutMs };
    let platformChecks: PostureCheck[] = [];
    try {
      if (platform === 'linux') platformChecks = await runLinuxChecks(input);
      else if (platform === 'darwin') platformChecks = await runDarwinChecks(input);
      else if (platform === 'win32') platformChecks = await runWin32Checks(input);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      platformChecks = PostureCheckId.options
        .filter((id) => id !== 'app-integrity')
        .map((id) =>
          unknown(
            id,
            `The check failed unexpectedly: ${message}.`,
            'Check again; if this persists, send IT a diagnostics bundle.',
          ),
        );
    }
    const all = [...platformChecks, checkAppIntegrity(launch)];
    return PostureCheckId.options.map(
      (id) =>
        all.find((c) => c.id === id) ??
        unknown(id, `Clearance cannot check this on ${platform}.`, 'Use Clearance on Linux, macOS or Windows.'),
    );
  }
}
