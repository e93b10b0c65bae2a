import { open } from 'node:fs/promises';

/**
 * Electron's fuse wire marker: the fuses follow it in the executable (`@electron/fuses`, version 1).
 */
export const FUSE_SENTINEL = 'dL7pKGdnNz796PbbjQWNKmHXBZaB9tsX';

/** The fuses in wire order (index = position after the sentinel, version and length bytes). */
export const FUSE_NAMES = [
  'runAsNode',
  'enableCookieEncryption',
  'enableNodeOptionsEnvironmentVariable',
  'enableNodeCliInspectArguments',
  'enableEmbeddedAsarIntegrityValidation',
  'onlyLoadAppFromAsar',
  'loadBrowserProcessSpecificV8Snapshot',
  'grantFileProtocolExtraPrivileges',
] as const;
export type FuseName = (typeof FUSE_NAMES)[number];

/** The state a fuse is in: flipped on, off, or removed from this Electron version. */
export type FuseState = 'on' | 'off' | 'removed';

/**
 * What the app could read of its own fuses: their states, or why they could not be read.
 */
export type FuseReading =
  | { readonly readable: true; readonly fuses: Readonly<Partial<Record<FuseName, FuseState>>> }
  | { readonly readable: false; readonly reason: string };

/**
 * The fuse states the packaged app must have, as electron-builder.yml's `electronFuses` asks.
 */
export const REQUIRED_FUSES: Readonly<Record<Exclude<FuseName, 'loadBrowserProcessSpecificV8Snapshot'>, boolean>> = {
  runAsNode: false,
  enableCookieEncryption: true,
  enableNodeOptionsEnvironmentVariable: false,
  enableNodeCliInspectArguments: false,
  enableEmbeddedAsarIntegrityValidation: true,
  onlyLoadAppFromAsar: true,
  grantFileProtocolExtraPrivileges: false,
};

/**
 * Parses the fuse wire that follows the sentinel at `offset` in `bytes`.
 */
export function parseFuseWire(bytes: Uint8Array, offset: number): FuseReading {
  const version = bytes[offset];
  const length = bytes[offset + 1];
  if (version === undefined || length === undefined) return { readable: false, reason: 'the fuse wire is truncated' };
  if (version !== 0x31) return { readable: false, reason: `unknown fuse wire version ${version}` };
  if (offset + 2 + length > bytes.length) return { readable: false, reason: 'the fuse wire is truncated' };
  const fuses: Partial<Record<FuseName, FuseState>> = {};
  for (let index = 0; index < Math.min(length, FUSE_NAMES.length); index += 1) {
    const name = FUSE_NAMES[index]!;
    const value = bytes[offset + 2 + index];
    if (value === 0x31) fuses[name] = 'on';
    else if (value === 0x30) fuses[name] = 'off';
    else if (value === 0x72) fuses[name] = 'removed';
    else return { readable: false, reason: `fuse ${name} has an unknown state ${value}` };
  }
  return { readable: true, fuses };
}

/**
 * The fuses whose state differs from {@link REQUIRED_FUSES}, as readable phrases.
 */
export function wrongFuses(reading: Extract<FuseReading, { readable: true }>): string[] {
  return Object.entries(REQUIRED_FUSES)
    .filter(([name, wanted]) => reading.fuses[name as FuseName] !== (wanted ? 'on' : 'off'))
    .map(
      ([name, wanted]) => `${name} is ${reading.fuses[name as FuseName] ?? 'missing'}, not ${wanted ? 'on' : 'off'}`,
    );
}

/**
 * Finds and reads the fuse wire in an Electron executable (on macOS, the Electron Framework binary).
 */
export async function readFuseWire(path: string, chunkSize = 4 * 1024 * 1024): Promise<FuseReading> {
  const sentinel = Buffer.from(FUSE_SENTINEL, 'latin1');
  const overlap = sentinel.length + 2 + 64;
  let file;
  try {
    file = await open(path, 'r');
  } catch (error) {
    return { readable: false, reason: `cannot open ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}` };
  }
  try {
    const buffer = Buffer.alloc(chunkSize + overlap);
    let carried = 0;
    let position = 0;
    for (;;) {
      const { bytesRead } = await file.read(buffer, carried, chunkSize, position);
      const filled = carried + bytesRead;
      const found = buffer.subarray(0, filled).indexOf(sentinel);
      if (found >= 0 && (found + overlap <= filled || bytesRead === 0)) {
        return parseFuseWire(buffer.subarray(0, filled), found + sentinel.length);
      }
      if (bytesRead === 0) return { readable: false, reason: `no fuse wire in ${path}` };
      position += bytesRead;
      carried = Math.min(overlap, filled);
      if (found < 0) buffer.copy(buffer, 0, filled - carried, filled);
      else {
        buffer.copy(buffer, 0, found, filled);
        carried = filled - found;
      }
    }
  } finally {
    await file.close();
  }
}

/** Where the fuse wire lives: the Electron Framework binary on macOS, the executable elsewhere. */
export function fuseBinaryPath(platform: NodeJS.Platform, execPath: string): string {
  if (platform !== 'darwin') return execPath;
  const contents = execPath.replace(/\/MacOS\/[^/]+$/, '');
  return `${contents}/Frameworks/Electron Framework.framework/Electron Framework`;
}
