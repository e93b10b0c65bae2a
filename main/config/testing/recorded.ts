import { readFileSync } from 'node:fs';
import type { CommandResult, CommandRunner } from '../../platform';

/** A recorded file's text (CRLF kept). */
export function recorded(path: string): string {
  return readFileSync(new URL(`../fixtures/${path}`, import.meta.url), 'utf8');
}

/** A command result: exit 0 with recorded stdout by default. */
export function result(stdout: string, exitCode: number | null = 0, stderr = ''): CommandResult {
  return { exitCode, stdout, stderr };
}

/**
 * A command runner that answers from a table keyed by `command arg arg…`, and records each call;
 * an unlisted command fails as if it were not installed.
 */
export function recordedRunner(table: Readonly<Record<string, CommandResult>>): CommandRunner & {
  readonly calls: string[];
} {
  const calls: string[] = [];
  return {
    calls,
    async run(command, args) {
      const line = [command, ...args].join(' ');
      calls.push(line);
      return table[line] ?? { exitCode: null, stdout: '', stderr: '', error: `spawn ${command} ENOENT` };
    },
  };
}

/**
 * Makes a file owned by an ordinary user (as root: uid 4242; otherwise it already is the caller's) and
 * returns that uid, so a test can check that policy owned by anyone but root is refused.
 */
export async function makeUserOwned(path: string): Promise<number> {
  const { chown, stat } = await import('node:fs/promises');
  if (process.getuid?.() === 0) await chown(path, 4242, 4242);
  return (await stat(path)).uid;
}
