import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PolicyProblem } from '../../shared/managedPolicy';
import { untrustedReason, type OwnershipRule } from './ownership';
import type { PolicyStoreRead, PolicyValue } from './policy';
import { POLICY_STORES } from './schema';

/** Where the Linux reader looks, and whom it trusts (injectable for tests and the harness). */
export interface LinuxPolicyOptions {
  /** `/etc/clearance` on a real device. */
  readonly dir?: string;
  readonly ownership: OwnershipRule;
}

/** Largest policy file read; a bigger one is refused rather than parsed. */
const MAX_FILE_BYTES = 256 * 1024;

const isMissing = (error: unknown): boolean =>
  (error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR';

/** Parses one policy file's text into values; a file that is not a JSON object is a problem. */
export function parsePolicyJson(
  text: string,
  location: string,
): { values: readonly PolicyValue[]; problem?: PolicyProblem } {
  let json: unknown;
  try {
    json = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (error) {
    return { values: [], problem: { location, message: `${location} is not valid JSON: ${(error as Error).message}` } };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { values: [], problem: { location, message: `${location} must hold a JSON object of settings` } };
  }
  return {
    values: Object.entries(json).map(([key, value]) => ({ key, value, source: 'file', level: 'machine', location })),
  };
}

/**
 * Reads `/etc/clearance/policy.json`, then `/etc/clearance/policy.d/*.json` in name order.
 *
 * Every file and folder must be owned by root and writable by no one else; one that is not is refused
 * (a problem that stops the app), never read.
 */
export async function readLinuxPolicy(options: LinuxPolicyOptions): Promise<PolicyStoreRead> {
  const dir = options.dir ?? POLICY_STORES.linuxDir;
  const dropIns = join(dir, 'policy.d');
  const problems: PolicyProblem[] = [];
  const values: PolicyValue[] = [];
  const trusted = async (path: string): Promise<'missing' | 'trusted' | 'refused'> => {
    try {
      const reason = await untrustedReason(path, options.ownership);
      if (!reason) return 'trusted';
      problems.push({ location: path, message: reason });
      return 'refused';
    } catch (error) {
      if (isMissing(error)) return 'missing';
      problems.push({ location: path, message: `${path} cannot be read: ${(error as Error).message}` });
      return 'refused';
    }
  };

  const root = await trusted(dir);
  if (root === 'missing') return { values: [], problems: [], present: false };
  if (root === 'refused') return { values: [], problems, present: true };

  const files = [join(dir, 'policy.json')];
  if ((await trusted(dropIns)) === 'trusted') {
    const names = await readdir(dropIns).catch(() => [] as string[]);
    files.push(
      // Stryker disable next-line MethodExpression: Node's readdir (libuv scandir) already returns names sorted on Linux; the sort keeps the documented order if that changes
      ...names
        .filter((n) => n.endsWith('.json'))
        .sort()
        .map((n) => join(dropIns, n)),
    );
  }
  let read = 0;
  for (const file of files) {
    if ((await trusted(file)) !== 'trusted') continue;
    let text: string;
    try {
      const bytes = await readFile(file);
      if (bytes.byteLength > MAX_FILE_BYTES) {
        problems.push({ location: file, message: `${file} is larger than ${MAX_FILE_BYTES} bytes` });
        continue;
      }
      text = bytes.toString('utf8');
    } catch (error) {
      problems.push({ location: file, message: `${file} cannot be read: ${(error as Error).message}` });
      continue;
    }
    read += 1;
    const parsed = parsePolicyJson(text, file);
    values.push(...parsed.values);
    if (parsed.problem) problems.push(parsed.problem);
  }
  return { values, problems, present: read > 0 || problems.length > 0, trustedFilePresent: read > 0 };
}
