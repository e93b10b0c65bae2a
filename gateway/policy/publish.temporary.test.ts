import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { POLICY_MANIFEST_FILE } from './candidate';
import { DEFAULT_POLICIES_DIR } from './engine';

/**
 * How the publish tool writes each file (issue 16): through a temporary file named for this process
 * and moment, renamed over the target. Two administrators publishing at once from two processes
 * therefore never write into the same temporary file, and the gateway never reads a half-written one.
 */
vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>();
  return { ...actual, writeFileSync: vi.fn(actual.writeFileSync), renameSync: vi.fn(actual.renameSync) };
});
const { publishPolicies } = await import('./publish');

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'clearance-publish-temporary-'));
  cpSync(DEFAULT_POLICIES_DIR, join(root, 'source'), { recursive: true });
});
afterEach(() => {
  vi.mocked(fs.writeFileSync).mockClear();
  vi.mocked(fs.renameSync).mockClear();
  vi.restoreAllMocks();
  rmSync(root, { recursive: true, force: true });
});

it('writes each file through a temporary named for this process and moment, renamed over its target', () => {
  const target = join(root, 'target');
  vi.spyOn(Date, 'now').mockReturnValue(1_700_000_000_000);
  const result = publishPolicies(join(root, 'source'), target, { publishedBy: 'it' });
  const names = [...result.files, POLICY_MANIFEST_FILE];
  const stamp = `${process.pid}-1700000000000`;
  expect(vi.mocked(fs.writeFileSync).mock.calls.map(([path]) => path)).toStrictEqual(
    names.map((name) => join(target, `.${name}.${stamp}.tmp`)),
  );
  expect(vi.mocked(fs.renameSync).mock.calls).toStrictEqual(
    names.map((name) => [join(target, `.${name}.${stamp}.tmp`), join(target, name)]),
  );
  // Nothing temporary is left behind.
  expect(readdirSync(target).sort()).toStrictEqual([...names].sort());
});
