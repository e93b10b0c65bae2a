import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';

/**
 * File the publish tool (`npm run policy:publish`) writes last into a policies folder.
 *
 * While it is present, the folder is only accepted when its `.cedar` files are exactly the
 * ones it lists with the hashes it lists; that is also what makes removing a file or a
 * forbid an intended act rather than a truncated or half-copied folder.
 */
export const POLICY_MANIFEST_FILE = 'policy-manifest.json';

/** Content of `policy-manifest.json`. */
export const PolicyManifest = z
  .object({
    version: z.literal(1),
    /** File name → SHA-256 of its bytes (lowercase hex). */
    files: z.record(z.string().regex(/^[^/\\]+\.cedar$/), z.string().regex(/^[0-9a-f]{64}$/)),
    publishedAt: z.iso.datetime(),
    publishedBy: z.string().optional(),
  })
  .strict();
export type PolicyManifest = z.infer<typeof PolicyManifest>;

/** A policies folder as read at one moment, before any validation. */
export interface PolicyCandidate {
  /** The folder after resolving symlinks (a ConfigMap-style flip changes it). */
  readonly realDir: string;
  /** `.cedar` file name → text, sorted by name. */
  readonly files: ReadonlyMap<string, string>;
  readonly manifest: PolicyManifest | undefined;
  /** SHA-256 over names and texts of the `.cedar` files and the manifest: equal folders hash equal. */
  readonly contentHash: string;
}

/** SHA-256 of a text's UTF-8 bytes, lowercase hex. */
export function sha256Hex(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * Reads every `.cedar` file and the manifest of `dir` in one pass.
 *
 * The folder is resolved once, so a symlink flipped while reading cannot mix two versions.
 */
export function readPolicyCandidate(dir: string): PolicyCandidate {
  let realDir: string;
  let names: string[];
  try {
    realDir = realpathSync(dir);
    names = readdirSync(realDir);
  } catch (error) {
    throw new Error(`cannot read policies folder ${dir}: ${(error as Error).message}`, { cause: error });
  }
  const files = new Map<string, string>();
  const hash = createHash('sha256');
  // Stryker disable next-line MethodExpression: Node's readdir (libuv's scandir) already sorts names on Linux; candidate.test.ts checks the order all the same
  for (const name of names.filter((n) => n.endsWith('.cedar')).sort()) {
    let text: string;
    try {
      text = readFileSync(join(realDir, name), 'utf8');
    } catch (error) {
      throw new Error(`cannot read ${name}: ${(error as Error).message}`, { cause: error });
    }
    files.set(name, text);
    hash.update(`${name}\0${text}\0`);
  }
  let manifest: PolicyManifest | undefined;
  if (names.includes(POLICY_MANIFEST_FILE)) {
    let text: string;
    try {
      text = readFileSync(join(realDir, POLICY_MANIFEST_FILE), 'utf8');
    } catch (error) {
      throw new Error(`cannot read ${POLICY_MANIFEST_FILE}: ${(error as Error).message}`, { cause: error });
    }
    hash.update(`${POLICY_MANIFEST_FILE}\0${text}\0`);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new Error(`${POLICY_MANIFEST_FILE} is not valid JSON (a publish may be in progress)`);
    }
    const parsed = PolicyManifest.safeParse(json);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
      throw new Error(`${POLICY_MANIFEST_FILE} is invalid: ${issues.join('; ')}`);
    }
    manifest = parsed.data;
  }
  return { realDir, files, manifest, contentHash: hash.digest('hex') };
}

/** Throws unless the candidate's `.cedar` files are exactly those its manifest lists, byte for byte. */
export function checkAgainstManifest(candidate: PolicyCandidate): void {
  const manifest = candidate.manifest;
  if (!manifest) return;
  const problems: string[] = [];
  for (const [name, expected] of Object.entries(manifest.files)) {
    const text = candidate.files.get(name);
    if (text === undefined) problems.push(`${name} is missing`);
    else if (sha256Hex(text) !== expected) problems.push(`${name} differs from its published hash`);
  }
  for (const name of candidate.files.keys()) {
    if (!(name in manifest.files)) problems.push(`${name} is not in the manifest`);
  }
  if (problems.length > 0) {
    throw new Error(
      `the folder does not match ${POLICY_MANIFEST_FILE} (${problems.join('; ')}); publish with "npm run policy:publish" or restore the files`,
    );
  }
}

/** Builds the manifest of a set of `.cedar` files. */
export function buildManifest(
  files: ReadonlyMap<string, string | Buffer>,
  publishedBy: string | undefined,
  now: Date = new Date(),
): PolicyManifest {
  return {
    version: 1,
    files: Object.fromEntries([...files].map(([name, text]) => [name, sha256Hex(text)])),
    publishedAt: now.toISOString(),
    ...(publishedBy ? { publishedBy } : {}),
  };
}
