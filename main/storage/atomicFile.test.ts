import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { removeTempFiles, writeFileAtomic } from './atomicFile';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clearance-atomic-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('replaces the file and leaves no temporary file behind', async () => {
    const path = join(dir, 'a.conv');
    await writeFileAtomic(path, Buffer.from('old'));
    const stamp = await writeFileAtomic(path, Buffer.from('newer'));
    expect(await readFile(path, 'utf8')).toBe('newer');
    expect(stamp.size).toBe(5);
    expect(await readdir(dir)).toEqual(['a.conv']);
  });

  it('keeps the old file when it fails before the rename, and cleans up its temporary file', async () => {
    const path = join(dir, 'a.conv');
    await writeFileAtomic(path, Buffer.from('old'));
    await expect(
      writeFileAtomic(path, Buffer.from('new'), {
        beforeRename: () => {
          throw new Error('simulated failure');
        },
      }),
    ).rejects.toThrow('simulated failure');
    expect(await readFile(path, 'utf8')).toBe('old');
    expect(await readdir(dir)).toEqual(['a.conv']);
  });
});

describe('removeTempFiles', () => {
  it('removes only the temporary files a crashed write left', async () => {
    await writeFile(join(dir, '.a.conv.0123abcd.tmp'), 'partial');
    await writeFile(join(dir, 'a.conv'), 'whole');
    await writeFile(join(dir, 'notes.tmp'), 'not ours');
    expect(await removeTempFiles(dir)).toEqual(['.a.conv.0123abcd.tmp']);
    expect((await readdir(dir)).sort()).toEqual(['a.conv', 'notes.tmp']);
  });
});
