import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import plist from 'plist';
import type { PolicyLevel, PolicyProblem } from '../../shared/managedPolicy';
import type { CommandRunner } from '../platform';
import { untrustedReason, type OwnershipRule } from './ownership';
import type { PolicyStoreRead, PolicyValue } from './policy';
import { POLICY_STORES } from './schema';

/** Where macOS puts what configuration profiles deliver. */
export const MANAGED_PREFERENCES_DIR = '/Library/Managed Preferences';
/** macOS's own converter, by absolute path; it reads binary property lists the plist library cannot. */
export const PLUTIL = '/usr/bin/plutil';

/** Where the macOS reader looks and whom it trusts (injectable for tests). */
export interface DarwinPolicyOptions {
  readonly dir?: string;
  /** The signed-in OS user's short name: their profile-delivered settings are in `<dir>/<user>/`. */
  readonly userName?: string;
  readonly commands: CommandRunner;
  readonly ownership: OwnershipRule;
}

/** Parses an XML property list of managed preferences into values; anything but a dictionary is a problem. */
export function parseManagedPreferences(
  xml: string,
  level: PolicyLevel,
  location: string,
): { values: readonly PolicyValue[]; problem?: PolicyProblem } {
  let parsed: unknown;
  try {
    parsed = plist.parse(xml);
  } catch (error) {
    return {
      values: [],
      problem: { location, message: `${location} is not a valid property list: ${(error as Error).message}` },
    };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || parsed instanceof Date) {
    return { values: [], problem: { location, message: `${location} must hold a dictionary of settings` } };
  }
  return {
    values: Object.entries(parsed).map(([key, value]) => ({ key, value, source: 'profile', level, location })),
  };
}

/**
 * Reads the managed preferences of `com.lab.clearance`: the machine's file, then the user's.
 *
 * XML property lists are parsed directly; binary ones (`bplist00`) are converted with `plutil`.
 * A file not owned by root, or writable by others, is refused.
 */
export async function readDarwinPolicy(options: DarwinPolicyOptions): Promise<PolicyStoreRead> {
  const dir = options.dir ?? MANAGED_PREFERENCES_DIR;
  const file = `${POLICY_STORES.darwinDomain}.plist`;
  const locations: Array<[PolicyLevel, string]> = [['machine', join(dir, file)]];
  if (options.userName && /^[^/\\.][^/\\]*$/.test(options.userName)) {
    locations.push(['user', join(dir, options.userName, file)]);
  }
  const values: PolicyValue[] = [];
  const problems: PolicyProblem[] = [];
  let present = false;
  for (const [level, location] of locations) {
    let bytes: Buffer;
    try {
      const refused = await untrustedReason(location, options.ownership);
      if (refused) {
        present = true;
        problems.push({ location, message: refused });
        continue;
      }
      bytes = await readFile(location);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      present = true;
      problems.push({ location, message: `${location} cannot be read: ${(error as Error).message}` });
      continue;
    }
    present = true;
    let xml = bytes.toString('utf8');
    if (bytes.subarray(0, 8).toString('latin1') === 'bplist00') {
      const converted = await options.commands.run(PLUTIL, ['-convert', 'xml1', '-o', '-', '--', location], {
        timeoutMs: 10_000,
      });
      if (converted.error !== undefined || converted.exitCode !== 0) {
        problems.push({
          location,
          message: `${location} is a binary property list that plutil could not convert: ${(converted.error ?? converted.stderr).trim()}`,
        });
        continue;
      }
      xml = converted.stdout;
    }
    const parsed = parseManagedPreferences(xml, level, location);
    values.push(...parsed.values);
    if (parsed.problem) problems.push(parsed.problem);
  }
  return { values, problems, present };
}
