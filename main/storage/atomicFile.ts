import { randomBytes } from 'node:crypto';
import { open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Size and modification time of a file as written, so a later start can tell whether it changed. */
export interface FileStamp {
  readonly size: number;
  readonly mtimeMs: number;
}

/** Writes a whole file so that a reader sees either the old content or the new, never a mix. */
export type AtomicWrite = (path: string, data: Uint8Array) => Promise<FileStamp>;

/** Points in {@link writeFileAtomic} where a test can stand in for a crash or a full disk. */
export interface AtomicWriteHooks {
  /** Runs after the temporary file is written and synced, before it replaces the target. */
  readonly beforeRename?: (tempPath: string) => Promise<void> | void;
}

/** Suffix of the temporary files {@link writeFileAtomic} writes before renaming. */
export const TEMP_SUFFIX = '.tmp';

/**
 * Writes `data` to `path` atomically and durably: temporary file, fsync, rename, fsync of the folder.
 *
 * A crash before the rename leaves the old file untouched and a stray temporary file that
 * {@link removeTempFiles} cleans up; a crash after it leaves the new file complete.
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array,
  hooks: AtomicWriteHooks = {},
): Promise<FileStamp> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`);
  let stamp: FileStamp;
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
    const stats = await handle.stat();
    stamp = { size: stats.size, mtimeMs: stats.mtimeMs };
  } catch (error) {
    await handle.close().catch(() => {});
    await rm(temp, { force: true }).catch(() => {});
    throw error;
  }
  await handle.close();
  try {
    await hooks.beforeRename?.(temp);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true }).catch(() => {});
    throw error;
  }
  await syncDirectory(dir);
  return stamp;
}

/**
 * Flushes a folder's entries (a rename) to disk.
 *
 * Windows cannot open a folder for syncing; NTFS journals the rename itself, so it is skipped there.
 */
export async function syncDirectory(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Deletes temporary files a crashed {@link writeFileAtomic} left in `dir`; answers their names. */
export async function removeTempFiles(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).filter((name) => name.startsWith('.') && name.endsWith(TEMP_SUFFIX));
  await Promise.all(names.map((name) => rm(join(dir, name), { force: true })));
  return names;
}
