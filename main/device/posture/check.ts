import type { PostureCheck, PostureCheckId } from '../../../shared/device';
import type { CommandResult } from '../../platform';

/** Builds a passing check. */
export function pass(id: PostureCheckId, detail: string): PostureCheck {
  return { id, status: 'pass', detail, remediation: '' };
}

/** Builds a failing check with the fix a person can apply. */
export function fail(id: PostureCheckId, detail: string, remediation: string): PostureCheck {
  return { id, status: 'fail', detail, remediation };
}

/**
 * Builds a check that could not tell; it never counts as a pass.
 */
export function unknown(id: PostureCheckId, detail: string, remediation: string): PostureCheck {
  return { id, status: 'unknown', detail, remediation };
}

/** True only for a check that positively passed (`unknown` is not a pass). */
export function isPassing(check: PostureCheck | undefined): boolean {
  return check?.status === 'pass';
}

/** The tool could not be started at all (not installed, not permitted). */
export function notRunnable(result: CommandResult): boolean {
  return result.error !== undefined;
}

/** Both output streams, for tools that print their answer on stderr (`sysadminctl`). */
export function allOutput(result: CommandResult): string {
  return `${result.stdout}\n${result.stderr}`;
}

/** The first line of a tool's complaint, for a detail a person can read. */
export function describeFailure(command: string, result: CommandResult): string {
  if (result.error) return `${command} could not be run (${result.error})`;
  const firstLine = allOutput(result)
    .split(/\r?\n/)
    .map((line) => line.trim())
    .find((line) => line.length > 0);
  const exit = result.exitCode === null ? 'was stopped' : `exited with ${result.exitCode}`;
  return firstLine ? `${command} ${exit}: ${truncate(firstLine, 160)}` : `${command} ${exit} without output`;
}

/** Shortens text for a detail line. */
export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/**
 * Compares dotted numeric versions (`10.0.22631` vs `10.0.19045`): negative, zero or positive.
 *
 * Returns `undefined` when either side is not a dotted number, so callers answer `unknown`
 * instead of guessing.
 */
export function compareVersions(a: string, b: string): number | undefined {
  const parse = (v: string) => (/^\d+(\.\d+)*$/.test(v.trim()) ? v.trim().split('.').map(Number) : undefined);
  const left = parse(a);
  const right = parse(b);
  if (!left || !right) return undefined;
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const diff = (left[i] ?? 0) - (right[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return 0;
}

/** The leading dotted number of a version string (`6.1.0-18-amd64` -> `6.1.0`). */
export function leadingVersion(text: string): string | undefined {
  return /^\s*(\d+(?:\.\d+)*)/.exec(text)?.[1];
}

/**
 * Checks a version against a minimum: `pass`/`fail`, or `unknown` when it cannot be compared.
 */
export function versionMeetsMinimum(version: string, minimum: string): 'pass' | 'fail' | 'unknown' {
  const comparison = compareVersions(version, minimum);
  if (comparison === undefined) return 'unknown';
  return comparison >= 0 ? 'pass' : 'fail';
}
