import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { POLICY_MANIFEST_FILE } from './candidate';
import { DEFAULT_POLICIES_DIR } from './engine';

/**
 * `npm run policy:publish -- <source> <target> [--by <name>]` (issue 16), run in this process:
 * its arguments, what it prints, and its exit codes.
 */
class Exit extends Error {
  constructor(readonly code: number | undefined) {
    super(`exit ${code}`);
  }
}

let root: string;
let source: string;
let target: string;
let errors: string[];
let logs: string[];
const argv = process.argv;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'clearance-publish-cli-'));
  source = join(root, 'source');
  target = join(root, 'target');
  cpSync(DEFAULT_POLICIES_DIR, source, { recursive: true });
  errors = [];
  logs = [];
  vi.spyOn(console, 'error').mockImplementation((line: string) => void errors.push(line));
  vi.spyOn(console, 'log').mockImplementation((line: string) => void logs.push(line));
  vi.spyOn(process, 'exit').mockImplementation((code) => {
    throw new Exit(code as number | undefined);
  });
});
afterEach(() => {
  process.argv = argv;
  vi.restoreAllMocks();
  rmSync(root, { recursive: true, force: true });
});

/** Runs the tool with `args`; the exit code, or undefined when it returned normally. */
async function run(...args: string[]): Promise<number | undefined> {
  process.argv = ['node', 'publish-cli.ts', ...args];
  vi.resetModules();
  try {
    await import('./publish-cli');
  } catch (error) {
    if (error instanceof Exit) return error.code;
    throw error;
  }
  return undefined;
}

const manifest = () => JSON.parse(readFileSync(join(target, POLICY_MANIFEST_FILE), 'utf8')) as Record<string, unknown>;
const USAGE = 'Usage: npm run policy:publish -- <source folder> <gateway policies folder> [--by <name>]';
const published = (removed = '') =>
  `Published 7 policies in 5 files to ${target}${removed}. The gateway applies the set once it sees the new policy-manifest.json (check GET /healthz).`;

describe('policy:publish', () => {
  it('publishes, signed by the name after --by wherever it stands', async () => {
    expect(await run(source, '--by', 'bob', target)).toBeUndefined();
    expect(manifest().publishedBy).toBe('bob');
    expect(logs).toEqual([published()]);
    expect(errors).toEqual([]);
  });

  it('publishes with --by first', async () => {
    expect(await run('--by', 'carol', source, target)).toBeUndefined();
    expect(manifest().publishedBy).toBe('carol');
  });

  it('signs with the user running it when there is no --by', async () => {
    expect(await run(source, target)).toBeUndefined();
    expect(manifest().publishedBy).toBe(userInfo().username);
  });

  it('leaves the manifest unsigned when --by has no name', async () => {
    expect(await run(source, target, '--by')).toBeUndefined();
    expect('publishedBy' in manifest()).toBe(false);
  });

  it('resolves relative folders', async () => {
    expect(await run(relative(process.cwd(), source), relative(process.cwd(), target), '--by', 'x')).toBeUndefined();
    expect(logs).toEqual([published()]);
  });

  it('names the files it removed', async () => {
    await run(source, target, '--by', 'x');
    writeFileSync(join(target, 'old.cedar'), '');
    writeFileSync(join(target, 'older.cedar'), '');
    logs = [];
    expect(await run(source, target, '--by', 'x')).toBeUndefined();
    expect(logs).toEqual([published('; removed old.cedar, older.cedar')]);
  });

  it.each([[[]], [['only-source']], [['--by', 'x', 'only-source']]])(
    'prints the usage and exits 2 without both folders (%j)',
    async (args) => {
      expect(await run(...args)).toBe(2);
      expect(errors).toEqual([USAGE]);
      expect(logs).toEqual([]);
    },
  );

  it('exits 1 and publishes nothing when the set is invalid', async () => {
    writeFileSync(join(source, 'broken.cedar'), '@id("broken")\nforbid (principal, action, resource);\n');
    expect(await run(source, target, '--by', 'x')).toBe(1);
    expect(errors).toHaveLength(1);
    expect(
      errors[0]?.startsWith(
        `Not published: Cannot start with the policies in ${source}: broken.cedar, policy 1 ("broken"): a forbid needs @reason`,
      ),
    ).toBe(true);
    expect(logs).toEqual([]);
    expect(existsSync(target)).toBe(false);
  });
});
