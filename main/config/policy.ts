import type { z } from 'zod';
import {
  LockableSetting,
  type ManagedPolicyView,
  type PolicyEntry,
  type PolicyLevel,
  type PolicyProblem,
  type PolicySourceKind,
} from '../../shared/managedPolicy';
import { keyMeta, MANAGED_KEYS, ManagedConfig, type ManagedKey } from './schema';

/** One value as a store reader found it, converted to JSON-like data (or with the reason it could not be). */
export interface PolicyValue {
  /** The name as found in the store. */
  readonly key: string;
  readonly value: unknown;
  readonly source: PolicySourceKind;
  readonly level: PolicyLevel;
  readonly location: string;
  /** Set when the stored value could not be converted (a wrong registry type, JSON that does not parse). */
  readonly problem?: string;
}

/** What a store reader found: values in reading order (a later one at the same level wins), and store problems. */
export interface PolicyStoreRead {
  readonly values: readonly PolicyValue[];
  /** Problems that make the store unusable (unreadable, malformed, not owned by root): each stops the app. */
  readonly problems: readonly PolicyProblem[];
  /** A policy store exists on this device (even an empty or broken one). */
  readonly present: boolean;
  /** Linux: the settings came from root-owned files that no one else can write (a managed-device signal). */
  readonly trustedFilePresent?: boolean;
}

/** The device's managed configuration, evaluated: what applies, what was rejected, and whether the app may run. */
export interface ManagedPolicy {
  readonly view: ManagedPolicyView;
  /** The values that applied; the app must not run on them when `view.state` is `invalid`. */
  readonly config: ManagedConfig;
  readonly present: boolean;
  readonly trustedFilePresent: boolean;
}

/** No managed configuration at all. */
export const UNMANAGED: ManagedPolicy = {
  view: { state: 'unmanaged', entries: [], problems: [], locked: [], settings: {} },
  config: {},
  present: false,
  trustedFilePresent: false,
};

const display = (value: unknown): string =>
  typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));

/** Where in a value an issue is: `0` for a list's first entry. */
const dotted = (path: readonly PropertyKey[]): string =>
  // Stryker disable next-line StringLiteral: the dot never shows, no managed key's schema nests deeper than one level
  path.join('.');

/** Zod's issues as one sentence for IT. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => (i.path.length > 0 ? `${dotted(i.path)}: ${i.message}` : i.message)).join('; ');
}

/** The schema key a stored name means: exact, or case-insensitive in the registry (whose names are). */
function canonicalKey(name: string, source: PolicySourceKind): ManagedKey | undefined {
  if ((MANAGED_KEYS as readonly string[]).includes(name)) return name as ManagedKey;
  if (source !== 'registry') return undefined;
  return MANAGED_KEYS.find((k) => k.toLowerCase() === name.toLowerCase());
}

/**
 * Evaluates what the stores hold: validates each value against the schema, applies machine over user
 * and a later file over an earlier one, and collects the problems that stop the app.
 */
export function evaluatePolicy(read: PolicyStoreRead): ManagedPolicy {
  const problems: PolicyProblem[] = [...read.problems];
  const entries: Array<PolicyEntry & { readonly canonical?: ManagedKey; readonly parsed?: unknown }> = [];
  for (const found of read.values) {
    const base = {
      key: found.key,
      value: display(found.value),
      source: found.source,
      level: found.level,
      location: found.location,
    };
    const key = canonicalKey(found.key, found.source);
    if (!key) {
      entries.push({
        ...base,
        status: 'unknown',
        reason: 'This version of Clearance does not know this key (a typo, or a key from a newer version); ignored.',
      });
      continue;
    }
    if (found.level === 'user' && keyMeta(key).scope === 'machine') {
      entries.push({
        ...base,
        status: 'rejected',
        reason: 'Only a machine policy may set this key; the user policy is ignored.',
      });
      continue;
    }
    const reason =
      found.problem ??
      (() => {
        const parsed = ManagedConfig.shape[key].safeParse(found.value);
        return parsed.success ? undefined : describeIssues(parsed.error);
      })();
    if (reason) {
      entries.push({ ...base, status: 'rejected', reason });
      problems.push({ key: found.key, location: found.location, message: reason });
      continue;
    }
    entries.push({ ...base, status: 'applied', canonical: key, parsed: ManagedConfig.shape[key].parse(found.value) });
  }

  const config: Record<string, unknown> = {};
  const winners = new Map<ManagedKey, number>();
  entries.forEach((entry, index) => {
    // Stryker disable next-line ConditionalExpression: only applied entries carry `canonical`, so the status test and the `canonical` test each decide alone
    if (entry.status !== 'applied' || !entry.canonical) return;
    const current = winners.get(entry.canonical);
    const currentEntry = current === undefined ? undefined : entries[current];
    if (currentEntry?.level === 'machine' && entry.level === 'user') return;
    winners.set(entry.canonical, index);
  });
  const final = entries.map((entry, index): PolicyEntry => {
    const { canonical, parsed, ...plain } = entry;
    // Stryker disable next-line ConditionalExpression: only applied entries carry `canonical`, so the status test and the `canonical` test each decide alone
    if (entry.status !== 'applied' || !canonical) return plain;
    const winner = winners.get(canonical) as number;
    if (winner !== index) {
      const by = entries[winner] as PolicyEntry;
      return {
        ...plain,
        status: 'overridden',
        reason: by.level !== entry.level ? 'The machine policy sets this key.' : `Replaced by ${by.location}.`,
      };
    }
    config[canonical] = parsed;
    if (canonical === 'locks') {
      const names = parsed as readonly string[];
      const unknown = names.filter((n) => !LockableSetting.safeParse(n).success);
      config.locks = names.filter((n) => LockableSetting.safeParse(n).success);
      if (unknown.length > 0) {
        return {
          ...plain,
          reason: `Ignored ${unknown.map((n) => `"${n}"`).join(', ')}: not a setting of this version (lockable: ${LockableSetting.options.join(', ')}).`,
        };
      }
    }
    return plain;
  });

  const applied = config as ManagedConfig;
  const present = read.present || final.length > 0 || problems.length > 0;
  const view: ManagedPolicyView = {
    state: problems.length > 0 ? 'invalid' : present ? 'managed' : 'unmanaged',
    entries: final,
    problems,
    // Stryker disable next-line ArrayDeclaration: the filter drops any name that is not a lockable setting, so a non-empty fallback list filters to [] too
    locked: (applied.locks ?? []).filter((n): n is LockableSetting => LockableSetting.safeParse(n).success),
    settings: {
      ...(applied.theme !== undefined ? { theme: applied.theme } : {}),
      ...(applied.spellCheck !== undefined ? { spellCheck: applied.spellCheck } : {}),
    },
    ...(applied.supportContact !== undefined ? { supportContact: applied.supportContact } : {}),
  };
  return {
    view,
    config: applied,
    present,
    trustedFilePresent: read.trustedFilePresent === true && problems.length === 0,
  };
}
