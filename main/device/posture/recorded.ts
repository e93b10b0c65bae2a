import type { CommandResult, CommandRunner } from '../../platform';

/** The key a recorded output is filed under: the command and its arguments joined by spaces. */
export function commandKey(command: string, args: readonly string[]): string {
  return [command, ...args].join(' ');
}

/**
 * A `CommandRunner` that answers from recorded outputs, for tests and the harness's demo devices.
 *
 * A command with no recording answers as a tool that is not installed.
 */
export class RecordedCommandRunner implements CommandRunner {
  private readonly ran: string[] = [];

  constructor(private readonly recordings: Readonly<Record<string, CommandResult>>) {}

  /** Every command line asked for so far, in order. */
  get calls(): readonly string[] {
    return [...this.ran];
  }

  async run(command: string, args: readonly string[]): Promise<CommandResult> {
    const key = commandKey(command, args);
    this.ran.push(key);
    const recorded = Object.hasOwn(this.recordings, key) ? this.recordings[key] : undefined;
    return recorded ?? { exitCode: null, stdout: '', stderr: '', error: `${command}: ENOENT` };
  }
}
