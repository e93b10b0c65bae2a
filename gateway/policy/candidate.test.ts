import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  buildManifest,
  checkAgainstManifest,
  POLICY_MANIFEST_FILE,
  PolicyManifest,
  readPolicyCandidate,
  sha256Hex,
} from './candidate';

/**
 * A policies folder as read at one moment (issue 16): what is read, how it is hashed, and every
 * way a manifest or a folder that does not match it is refused, each by its exact reason.
 */
const HASH = 'a'.repeat(64);
let root: string;
let dir: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'clearance-candidate-'));
  dir = join(root, 'policies');
  mkdirSync(dir);
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
  vi.useRealTimers();
});

const write = (name: string, text: string) => writeFileSync(join(dir, name), text);
const writeManifest = (value: unknown) =>
  write(POLICY_MANIFEST_FILE, typeof value === 'string' ? value : JSON.stringify(value));
const manifestError = () => {
  try {
    readPolicyCandidate(dir);
  } catch (error) {
    return (error as Error).message;
  }
  return undefined;
};

describe('sha256Hex', () => {
  it('is the lowercase hex SHA-256 of the bytes', () => {
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256Hex(Buffer.from('abc'))).toBe(sha256Hex('abc'));
  });
});

describe('readPolicyCandidate', () => {
  it('reads only the .cedar files, sorted by name, and hashes names and texts', () => {
    write('b.cedar', 'B');
    write('a.cedar', 'A');
    write('notes.txt', 'ignored');
    write('c.cedar.bak', 'ignored');
    const candidate = readPolicyCandidate(dir);
    expect([...candidate.files]).toEqual([
      ['a.cedar', 'A'],
      ['b.cedar', 'B'],
    ]);
    expect(candidate.manifest).toBeUndefined();
    expect(candidate.contentHash).toBe(createHash('sha256').update('a.cedar\0A\0b.cedar\0B\0').digest('hex'));
  });

  it('hashes the manifest after the files, and a moved text changes the hash', () => {
    write('a.cedar', 'A');
    const manifest = buildManifest(new Map([['a.cedar', 'A']]), 'it', new Date('2026-01-02T03:04:05.000Z'));
    const text = JSON.stringify(manifest);
    writeManifest(text);
    const candidate = readPolicyCandidate(dir);
    expect(candidate.manifest).toEqual(manifest);
    expect(candidate.contentHash).toBe(
      createHash('sha256').update(`a.cedar\0A\0${POLICY_MANIFEST_FILE}\0${text}\0`).digest('hex'),
    );
    rmSync(join(dir, POLICY_MANIFEST_FILE));
    write('a.cedar', '');
    write('b.cedar', 'A');
    expect(readPolicyCandidate(dir).contentHash).not.toBe(createHash('sha256').update('a.cedar\0A\0').digest('hex'));
  });

  it('resolves a symlinked folder once', () => {
    write('a.cedar', 'A');
    const link = join(root, 'current');
    symlinkSync(dir, link);
    const candidate = readPolicyCandidate(link);
    expect(candidate.realDir).toBe(dir);
    expect([...candidate.files.keys()]).toEqual(['a.cedar']);
  });

  it('refuses a folder it cannot read, naming it, with the cause', () => {
    const missing = join(root, 'missing');
    let caught: Error | undefined;
    try {
      readPolicyCandidate(missing);
    } catch (error) {
      caught = error as Error;
    }
    let nodeMessage = '';
    try {
      realpathSync(missing);
    } catch (error) {
      nodeMessage = (error as Error).message;
    }
    expect(caught?.message).toBe(`cannot read policies folder ${missing}: ${nodeMessage}`);
    expect((caught?.cause as NodeJS.ErrnoException).code).toBe('ENOENT');
  });

  it('refuses a .cedar entry it cannot read, naming it, with the cause', () => {
    mkdirSync(join(dir, 'x.cedar'));
    let caught: Error | undefined;
    try {
      readPolicyCandidate(dir);
    } catch (error) {
      caught = error as Error;
    }
    expect(caught?.message).toBe('cannot read x.cedar: EISDIR: illegal operation on a directory, read');
    expect((caught?.cause as NodeJS.ErrnoException).code).toBe('EISDIR');
  });

  it('refuses a manifest it cannot read, naming it, with the cause', () => {
    mkdirSync(join(dir, POLICY_MANIFEST_FILE));
    let caught: Error | undefined;
    try {
      readPolicyCandidate(dir);
    } catch (error) {
      caught = error as Error;
    }
    expect(caught?.message).toBe('cannot read policy-manifest.json: EISDIR: illegal operation on a directory, read');
    expect((caught?.cause as NodeJS.ErrnoException).code).toBe('EISDIR');
  });

  it('refuses a manifest that is not JSON (a publish may be in progress)', () => {
    writeManifest('{"version": 1,');
    expect(manifestError()).toBe('policy-manifest.json is not valid JSON (a publish may be in progress)');
  });

  it('refuses an invalid manifest, naming every issue by its path', () => {
    writeManifest({ version: 1, files: { 'a/b.cedar': HASH }, publishedAt: 'x', extra: 1 });
    expect(manifestError()).toBe(
      'policy-manifest.json is invalid: files.a/b.cedar: Invalid key in record; publishedAt: Invalid ISO datetime; (root): Unrecognized key: "extra"',
    );
    writeManifest([]);
    expect(manifestError()).toBe(
      'policy-manifest.json is invalid: (root): Invalid input: expected object, received array',
    );
  });
});

describe('PolicyManifest', () => {
  const valid = { version: 1, files: { 'a.cedar': HASH }, publishedAt: '2026-01-02T03:04:05.000Z' };
  it('accepts a published manifest, with or without publishedBy', () => {
    expect(PolicyManifest.safeParse(valid).success).toBe(true);
    expect(PolicyManifest.safeParse({ ...valid, publishedBy: 'it' }).success).toBe(true);
    expect(PolicyManifest.safeParse({ ...valid, files: {} }).success).toBe(true);
  });
  it.each([
    ['another version', { ...valid, version: 2 }],
    ['no version', { files: valid.files, publishedAt: valid.publishedAt }],
    ['no files', { version: 1, publishedAt: valid.publishedAt }],
    ['no publishedAt', { version: 1, files: valid.files }],
    ['a publishedAt that is no date-time', { ...valid, publishedAt: '2026-01-02' }],
    ['a non-string publishedBy', { ...valid, publishedBy: 7 }],
    ['an unknown key', { ...valid, extra: true }],
    ['a file in a subfolder', { ...valid, files: { 'sub/a.cedar': HASH } }],
    ['a file behind a backslash', { ...valid, files: { 'sub\\a.cedar': HASH } }],
    ['a file that is not .cedar', { ...valid, files: { 'a.cedar.bak': HASH } }],
    ['a file named only .cedar', { ...valid, files: { '.cedar': HASH } }],
    ['a file whose dot is any character', { ...valid, files: { axcedar: HASH } }],
    ['an uppercase hash', { ...valid, files: { 'a.cedar': 'A'.repeat(64) } }],
    ['a hash of 63 digits', { ...valid, files: { 'a.cedar': 'a'.repeat(63) } }],
    ['a hash of 65 digits', { ...valid, files: { 'a.cedar': 'a'.repeat(65) } }],
    ['a hash with a non-hex digit', { ...valid, files: { 'a.cedar': `g${'a'.repeat(63)}` } }],
    ['a hash with a leading space', { ...valid, files: { 'a.cedar': ` ${'a'.repeat(64)}` } }],
  ])('refuses %s', (_what, value) => {
    expect(PolicyManifest.safeParse(value).success).toBe(false);
  });
});

describe('checkAgainstManifest', () => {
  const check = () => {
    try {
      checkAgainstManifest(readPolicyCandidate(dir));
    } catch (error) {
      return (error as Error).message;
    }
    return undefined;
  };

  it('accepts any folder without a manifest', () => {
    write('a.cedar', 'A');
    expect(check()).toBeUndefined();
  });

  it('accepts a folder whose files are exactly those listed, byte for byte', () => {
    write('a.cedar', 'A');
    write('b.cedar', 'B');
    writeManifest(
      buildManifest(
        new Map([
          ['a.cedar', 'A'],
          ['b.cedar', 'B'],
        ]),
        undefined,
      ),
    );
    expect(check()).toBeUndefined();
  });

  it('names every file missing, changed or unlisted', () => {
    write('b.cedar', 'B changed');
    write('c.cedar', 'C');
    write('d.cedar', 'D');
    writeManifest(
      buildManifest(
        new Map([
          ['a.cedar', 'A'],
          ['b.cedar', 'B'],
          ['d.cedar', 'D'],
        ]),
        undefined,
      ),
    );
    expect(check()).toBe(
      'the folder does not match policy-manifest.json (a.cedar is missing; b.cedar differs from its published hash; c.cedar is not in the manifest); publish with "npm run policy:publish" or restore the files',
    );
  });

  it('refuses an empty folder whose manifest lists a file', () => {
    writeManifest(buildManifest(new Map([['a.cedar', 'A']]), undefined));
    expect(check()).toBe(
      'the folder does not match policy-manifest.json (a.cedar is missing); publish with "npm run policy:publish" or restore the files',
    );
  });
});

describe('buildManifest', () => {
  it('lists each file with the SHA-256 of its bytes, the time and who published', () => {
    expect(
      buildManifest(
        new Map<string, string | Buffer>([
          ['a.cedar', 'A'],
          ['b.cedar', Buffer.from('B')],
        ]),
        'alice',
        new Date('2026-01-02T03:04:05.000Z'),
      ),
    ).toStrictEqual({
      version: 1,
      files: { 'a.cedar': sha256Hex('A'), 'b.cedar': sha256Hex('B') },
      publishedAt: '2026-01-02T03:04:05.000Z',
      publishedBy: 'alice',
    });
  });

  it('leaves publishedBy out when nobody is named, and dates it now by default', () => {
    vi.useFakeTimers({ now: new Date('2026-03-04T05:06:07.000Z'), toFake: ['Date'] });
    expect(buildManifest(new Map(), undefined)).toStrictEqual({
      version: 1,
      files: {},
      publishedAt: '2026-03-04T05:06:07.000Z',
    });
    expect(buildManifest(new Map(), '')).toStrictEqual({
      version: 1,
      files: {},
      publishedAt: '2026-03-04T05:06:07.000Z',
    });
  });
});
