import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FUSE_SENTINEL, fuseBinaryPath, parseFuseWire, readFuseWire, wrongFuses } from './fuses';

const dir = await mkdtemp(join(tmpdir(), 'clearance-fuses-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

/** A fake executable: random bytes, then the fuse wire at `at`. */
async function binary(name: string, wire: string, at: number, size: number): Promise<string> {
  const bytes = randomBytes(size);
  Buffer.from(`${FUSE_SENTINEL}1${String.fromCharCode(wire.length)}${wire}`, 'latin1').copy(bytes, at);
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

describe('reading Electron fuses', () => {
  it('reads the wire electron-builder writes with every fuse as shipped', async () => {
    const path = await binary('shipped', '01001100', 5000, 20000);
    const reading = await readFuseWire(path);
    expect(reading).toEqual({
      readable: true,
      fuses: {
        runAsNode: 'off',
        enableCookieEncryption: 'on',
        enableNodeOptionsEnvironmentVariable: 'off',
        enableNodeCliInspectArguments: 'off',
        enableEmbeddedAsarIntegrityValidation: 'on',
        onlyLoadAppFromAsar: 'on',
        loadBrowserProcessSpecificV8Snapshot: 'off',
        grantFileProtocolExtraPrivileges: 'off',
      },
    });
    expect(reading.readable && wrongFuses(reading)).toEqual([]);
  });

  it('finds a wire that straddles two reads', async () => {
    const path = await binary('straddle', '1r110000', 1000 - 10, 3000);
    const reading = await readFuseWire(path, 1000);
    expect(reading.readable).toBe(true);
    expect(reading.readable && reading.fuses.enableCookieEncryption).toBe('removed');
    expect(reading.readable && wrongFuses(reading)).toEqual([
      'runAsNode is on, not off',
      'enableCookieEncryption is removed, not on',
      'enableNodeOptionsEnvironmentVariable is on, not off',
      'enableNodeCliInspectArguments is on, not off',
      'enableEmbeddedAsarIntegrityValidation is off, not on',
      'onlyLoadAppFromAsar is off, not on',
    ]);
  });

  it('says why when there is no wire, the file is missing or the wire is garbled', async () => {
    const plain = join(dir, 'plain');
    await writeFile(plain, randomBytes(5000));
    expect(await readFuseWire(plain)).toEqual({ readable: false, reason: `no fuse wire in ${plain}` });
    expect(await readFuseWire(join(dir, 'missing'))).toMatchObject({ readable: false, reason: /ENOENT/ });
    const wire = Buffer.from(`${FUSE_SENTINEL}1\u0002x0`, 'latin1');
    expect(parseFuseWire(wire, FUSE_SENTINEL.length)).toMatchObject({ readable: false, reason: /unknown state/ });
    expect(parseFuseWire(Buffer.from('2\u00010'), 0)).toMatchObject({ readable: false, reason: /version/ });
    expect(parseFuseWire(Buffer.from('1\u00090'), 0)).toMatchObject({ readable: false, reason: /truncated/ });
  });

  it('looks in the Electron Framework on macOS and the executable elsewhere', () => {
    expect(fuseBinaryPath('darwin', '/Applications/Clearance.app/Contents/MacOS/Clearance')).toBe(
      '/Applications/Clearance.app/Contents/Frameworks/Electron Framework.framework/Electron Framework',
    );
    expect(fuseBinaryPath('linux', '/opt/Clearance/clearance')).toBe('/opt/Clearance/clearance');
  });
});
