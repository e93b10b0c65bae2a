import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { untrustedReason } from './ownership';

const uid = process.getuid?.() ?? 0;
const ownership = { trustedUid: uid };
/** Changing a file's group to one the caller is not in needs root (the build machines run as root). */
const isRoot = uid === 0;
const temps: string[] = [];
afterEach(async () => {
  await Promise.all(temps.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function folder(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'clearance-ownership-'));
  temps.push(dir);
  return dir;
}

describe('untrustedReason', () => {
  it('trusts a regular file and a folder owned by the trusted owner that no one else can write', async () => {
    const dir = await folder();
    await chmod(dir, 0o755);
    const file = join(dir, 'policy.json');
    await writeFile(file, '{}', { mode: 0o644 });
    expect(await untrustedReason(dir, ownership)).toBeUndefined();
    expect(await untrustedReason(file, ownership)).toBeUndefined();
  });

  it('refuses a named pipe in place of a policy file: a writer could feed it any policy', async () => {
    const fifo = join(await folder(), 'policy.json');
    execFileSync('mkfifo', ['-m', '0644', fifo]);
    expect(await untrustedReason(fifo, ownership)).toBe(`${fifo} is not a regular file`);
  });

  it.runIf(isRoot)('refuses a file its group may write unless that group is root’s', async () => {
    const dir = await folder();
    const file = join(dir, 'policy.json');
    await writeFile(file, '{}');
    await chmod(file, 0o664);
    await chown(file, 0, 4242);
    expect(await untrustedReason(file, { trustedUid: 0 })).toBe(
      `${file} is writable by group 4242; make it writable by root only`,
    );

    await chown(file, 0, 0);
    expect(await untrustedReason(file, { trustedUid: 0 })).toBeUndefined();

    // A foreign group that may only read is harmless.
    await chown(file, 0, 4242);
    await chmod(file, 0o644);
    expect(await untrustedReason(file, { trustedUid: 0 })).toBeUndefined();
  });

  it('refuses a file every user may write, and names the fix', async () => {
    const file = join(await folder(), 'policy.json');
    await writeFile(file, '{}');
    await chmod(file, 0o646);
    expect(await untrustedReason(file, ownership)).toBe(
      `${file} is writable by every user; make it writable by root only`,
    );
  });

  it('refuses a file owned by anyone but the trusted owner, naming the owner', async () => {
    const dir = await folder();
    const file = join(dir, 'policy.json');
    await writeFile(file, '{}', { mode: 0o644 });
    expect(await untrustedReason(file, { trustedUid: uid + 1 })).toBe(
      `${file} is owned by user ${uid}, not root; Clearance only trusts policy that only root can change`,
    );
  });
});
