import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Reads a file of the identity provider's state folder; undefined when it does not exist. */
export async function readStateFile(stateDir: string, name: string): Promise<string | undefined> {
  try {
    return await readFile(join(stateDir, name), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`Could not read ${join(stateDir, name)}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Writes a file of the state folder atomically (temporary file, then rename).
 *
 * `secret` files (private keys, cookie keys, sessions) are readable by the owner only.
 */
export async function writeStateFile(
  stateDir: string,
  name: string,
  content: string,
  options: { readonly secret?: boolean } = {},
): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const target = join(stateDir, name);
  const temp = join(stateDir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(temp, content, { mode: options.secret ? 0o600 : 0o644, flag: 'wx' });
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true });
    throw new Error(`Could not write ${target}: ${(error as Error).message}`, { cause: error });
  }
}
