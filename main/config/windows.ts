import type { PolicyLevel, PolicyProblem } from '../../shared/managedPolicy';
import type { CommandResult, CommandRunner } from '../platform';
import type { PolicyStoreRead, PolicyValue } from './policy';
import { MANAGED_KEYS, POLICY_STORES, valueKind, type ManagedKey } from './schema';

/**
 * `reg.exe` by absolute path: a bare name would be searched for in the current folder and on the
 * user's PATH, where a user could put a program that prints any policy they like.
 */
export const REG_EXE = 'C:\\Windows\\System32\\reg.exe';

/** The registry hives Clearance reads, machine first. */
export const POLICY_HIVES: Readonly<Record<PolicyLevel, string>> = {
  machine: 'HKEY_LOCAL_MACHINE',
  user: 'HKEY_CURRENT_USER',
};

/** One value line of `reg query` output. */
export interface RegistryValue {
  readonly name: string;
  readonly type: string;
  readonly data: string;
}

/** One key of `reg query /s` output with its values. */
export interface RegistryKey {
  readonly path: string;
  readonly values: readonly RegistryValue[];
}

/**
 * Parses `reg query KEY /s` output: key lines start at column 0, value lines are
 * `    name    REG_TYPE    data` (four spaces apart; names and data may hold spaces).
 *
 * Windows-language neutral: hive names and `REG_*` types are never translated; the default value's
 * translated name (`(Default)`, `(Standard)`, `(Par défaut)`…) is skipped; CRLF or LF.
 */
export function parseRegQuery(stdout: string): RegistryKey[] {
  const keys: Array<{ path: string; values: RegistryValue[] }> = [];
  for (const line of stdout.split(/\r?\n/)) {
    if (/^HKEY_[A-Z_]+(\\.*)?$/.test(line.trimEnd())) {
      keys.push({ path: line.trimEnd(), values: [] });
      continue;
    }
    const match = /^ {4}(.*?) {4}(REG_[A-Z0-9_]+)(?: {4}(.*))?$/.exec(line);
    const current = keys[keys.length - 1];
    if (!match || !current) continue;
    const name = match[1] as string;
    if (/^\(.*\)$/.test(name)) continue;
    current.values.push({ name, type: match[2] as string, data: match[3] ?? '' });
  }
  return keys;
}

const TEXT_TYPES = new Set(['REG_SZ', 'REG_EXPAND_SZ']);

function canonical(name: string): ManagedKey | undefined {
  return MANAGED_KEYS.find((k) => k.toLowerCase() === name.toLowerCase());
}

/** Converts one registry value of the policy key to JSON-like data by the key's type. */
function convert(key: ManagedKey | undefined, value: RegistryValue): { value: unknown; problem?: string } {
  if (!key) return { value: value.data };
  const kind = valueKind(key);
  const found = `found ${value.type} ${value.data}`.trim();
  switch (kind.kind) {
    case 'boolean':
      // Stryker disable next-line Regex: reg.exe prints a REG_DWORD as 0x and hex digits, so no DWORD ending in 0x0 or 0x1 has anything before the 0x
      if (value.type === 'REG_DWORD' && /^0x[01]$/i.test(value.data)) return { value: value.data.endsWith('1') };
      return { value: value.data, problem: `expected a REG_DWORD of 1 (on) or 0 (off), ${found}` };
    case 'string':
    case 'enum':
      if (TEXT_TYPES.has(value.type)) return { value: value.data };
      return { value: value.data, problem: `expected a REG_SZ text value, ${found}` };
    case 'json':
      if (!TEXT_TYPES.has(value.type))
        return { value: value.data, problem: `expected a REG_SZ holding JSON, ${found}` };
      try {
        return { value: JSON.parse(value.data) as unknown };
      } catch {
        return { value: value.data, problem: 'expected a REG_SZ holding JSON; the text is not valid JSON' };
      }
    case 'string-list':
      if (value.type === 'REG_MULTI_SZ') return { value: value.data.split('\\0').filter((s) => s !== '') };
      return {
        value: value.data,
        problem: `expected a list: a subkey ${key} with values named 1, 2, 3… (what the template writes), ${found}`,
      };
  }
}

/**
 * Turns the keys `reg query <hive>\SOFTWARE\Policies\Clearance /s` printed into policy values.
 *
 * Values of the policy key are settings; a subkey is a list setting whose values (named 1, 2, 3…) are
 * its entries in numeric order.
 */
export function registryPolicyValues(keys: readonly RegistryKey[], level: PolicyLevel): PolicyValue[] {
  const root = `${POLICY_HIVES[level]}\\${POLICY_STORES.registryKey}`.toLowerCase();
  const values: PolicyValue[] = [];
  for (const key of keys) {
    const path = key.path.toLowerCase();
    if (path === root) {
      for (const value of key.values) {
        const name = canonical(value.name);
        const converted = convert(name, value);
        values.push({
          key: value.name,
          value: converted.value,
          source: 'registry',
          level,
          location: `${key.path}\\${value.name}`,
          ...(converted.problem ? { problem: converted.problem } : {}),
        });
      }
      continue;
    }
    if (!path.startsWith(`${root}\\`)) continue;
    const subkey = key.path.slice(root.length + 1);
    if (subkey.includes('\\')) continue;
    const name = canonical(subkey);
    const entries = [...key.values].sort((a, b) => Number(a.name) - Number(b.name));
    const wrong = entries.find((v) => !TEXT_TYPES.has(v.type) || !/^\d+$/.test(v.name));
    const isList = name !== undefined && valueKind(name).kind === 'string-list';
    values.push({
      key: subkey,
      value: entries.map((v) => v.data),
      source: 'registry',
      level,
      location: key.path,
      ...(name && !isList ? { problem: `expected a value of ${POLICY_STORES.registryKey}, found a subkey` } : {}),
      ...(isList && wrong
        ? { problem: `list entries must be REG_SZ values named 1, 2, 3…; found ${wrong.type} "${wrong.name}"` }
        : {}),
    });
  }
  return values;
}

/**
 * Reads the machine (HKLM) and user (HKCU) policy keys with `reg query`; never from the environment.
 *
 * Whether the Clearance key exists is read from its parent's listing (`SOFTWARE\Policies`, present on
 * every Windows), not from `reg`'s translated "not found" message: a key that is listed but cannot be
 * read, or a machine parent that cannot be listed, is a problem (fail closed), never "unmanaged".
 */
export async function readWindowsPolicy(commands: CommandRunner, regExe: string = REG_EXE): Promise<PolicyStoreRead> {
  const values: PolicyValue[] = [];
  const problems: PolicyProblem[] = [];
  let present = false;
  const failure = (result: CommandResult) =>
    result.error ?? `exit ${result.exitCode ?? 'none'}${result.stderr.trim() ? `: ${result.stderr.trim()}` : ''}`;
  for (const level of ['machine', 'user'] as const) {
    const parent = `${POLICY_HIVES[level]}\\SOFTWARE\\Policies`;
    const key = `${POLICY_HIVES[level]}\\${POLICY_STORES.registryKey}`;
    const listing = await commands.run(regExe, ['query', parent], { timeoutMs: 10_000 });
    if (listing.error !== undefined || listing.exitCode !== 0) {
      if (level === 'user') continue;
      present = true;
      problems.push({ location: parent, message: `The registry could not be read (reg.exe ${failure(listing)})` });
      continue;
    }
    const listed = parseRegQuery(listing.stdout).some((k) => k.path.toLowerCase() === key.toLowerCase());
    if (!listed) continue;
    present = true;
    const result = await commands.run(regExe, ['query', key, '/s'], { timeoutMs: 10_000 });
    const keys = parseRegQuery(result.stdout);
    if (result.error !== undefined || result.exitCode !== 0 || keys.length === 0) {
      problems.push({ location: key, message: `The policy key could not be read (reg.exe ${failure(result)})` });
      continue;
    }
    values.push(...registryPolicyValues(keys, level));
  }
  return { values, problems, present };
}
