import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { checkAgainstManifest, POLICY_MANIFEST_FILE, readPolicyCandidate, sha256Hex } from './candidate';
import { DEFAULT_POLICIES_DIR, PolicyEngine } from './engine';
import { publishPolicies } from './publish';

/**
 * The publish tool (issue 16): it validates the set as the gateway will before writing anything,
 * writes every file, removes the ones the set no longer has, and writes the manifest that makes
 * the folder acceptable.
 */
let root: string;
let source: string;
let target: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'clearance-publish-'));
  source = join(root, 'source');
  target = join(root, 'target');
  cpSync(DEFAULT_POLICIES_DIR, source, { recursive: true });
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(root, { recursive: true, force: true });
});

const sourceFiles = () =>
  readdirSync(source)
    .filter((name) => name.endsWith('.cedar'))
    .sort();

describe('publishPolicies', () => {
  it('writes every file and a manifest that lists them, and reports what it did', () => {
    const close = vi.spyOn(PolicyEngine.prototype, 'close');
    const result = publishPolicies(source, target, {
      publishedBy: 'it-release',
      now: new Date('2026-02-03T04:05:06.000Z'),
    });
    const expected = PolicyEngine.create({ policiesDir: source });
    void expected.close();
    expect(result).toStrictEqual({ files: sourceFiles(), removed: [], policies: expected.policies.length });
    expect(result.policies).toBeGreaterThan(5);
    // The engine built for the check ends its worker thread.
    expect(close).toHaveBeenCalledTimes(2);
    for (const name of sourceFiles()) {
      expect(readFileSync(join(target, name), 'utf8')).toBe(readFileSync(join(source, name), 'utf8'));
    }
    const manifest = JSON.parse(readFileSync(join(target, POLICY_MANIFEST_FILE), 'utf8'));
    expect(manifest).toStrictEqual({
      version: 1,
      files: Object.fromEntries(sourceFiles().map((name) => [name, sha256Hex(readFileSync(join(source, name)))])),
      publishedAt: '2026-02-03T04:05:06.000Z',
      publishedBy: 'it-release',
    });
    expect(readFileSync(join(target, POLICY_MANIFEST_FILE), 'utf8')).toBe(`${JSON.stringify(manifest, null, 2)}\n`);
    // No temporary file is left behind, and the gateway accepts the folder.
    expect(readdirSync(target).sort()).toEqual([...sourceFiles(), POLICY_MANIFEST_FILE].sort());
    expect(() => checkAgainstManifest(readPolicyCandidate(target))).not.toThrow();
  });

  it('writes the files readable by everyone and writable by the owner only, whatever the umask', () => {
    const umask = process.umask(0);
    try {
      publishPolicies(source, target, {});
    } finally {
      process.umask(umask);
    }
    for (const name of [...sourceFiles(), POLICY_MANIFEST_FILE]) {
      expect(statSync(join(target, name)).mode & 0o777).toBe(0o644);
    }
  });

  it('leaves publishedBy out when nobody is named', () => {
    publishPolicies(source, target, {});
    const manifest = JSON.parse(readFileSync(join(target, POLICY_MANIFEST_FILE), 'utf8'));
    expect('publishedBy' in manifest).toBe(false);
    expect(Number.isNaN(Date.parse(manifest.publishedAt))).toBe(false);
  });

  it('removes the .cedar files the set no longer has, and nothing else', () => {
    mkdirSync(target);
    writeFileSync(join(target, 'old.cedar'), '@id("old")\npermit (principal, action, resource);\n');
    writeFileSync(join(target, 'README.txt'), 'kept');
    writeFileSync(join(target, 'baseline.cedar'), 'overwritten');
    const result = publishPolicies(source, target, {});
    expect(result.removed).toEqual(['old.cedar']);
    expect(existsSync(join(target, 'old.cedar'))).toBe(false);
    expect(readFileSync(join(target, 'README.txt'), 'utf8')).toBe('kept');
    expect(readFileSync(join(target, 'baseline.cedar'), 'utf8')).toBe(
      readFileSync(join(source, 'baseline.cedar'), 'utf8'),
    );
  });

  it('writes nothing when the set is invalid', () => {
    writeFileSync(join(source, 'broken.cedar'), '@id("broken")\nforbid (principal, action, resource);\n');
    expect(() => publishPolicies(source, target, {})).toThrow(
      `Cannot start with the policies in ${source}: broken.cedar, policy 1 ("broken"): a forbid needs @reason set to one of`,
    );
    expect(existsSync(target)).toBe(false);
  });
});
