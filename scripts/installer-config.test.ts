import { load } from 'js-yaml';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fuseProblems, installerProblems, type ReadFile } from './installer-config';
import { icnsFromPngs, icoFromPngs } from './make-icons';

const config = load(readFileSync('electron-builder.yml', 'utf8')) as Record<string, unknown>;
const packageJson = JSON.parse(readFileSync('package.json', 'utf8')) as Record<string, unknown>;
const readReal: ReadFile = (path) => {
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
};
const clone = () => structuredClone(config) as Record<string, Record<string, unknown>>;

describe('electron-builder.yml fuses', () => {
  it('asks for every fuse the app requires', () => {
    expect(fuseProblems(config)).toEqual([]);
  });

  it.each([
    ['runAsNode', true],
    ['enableNodeOptionsEnvironmentVariable', true],
    ['enableNodeCliInspectArguments', true],
    ['enableEmbeddedAsarIntegrityValidation', false],
    ['onlyLoadAppFromAsar', false],
    ['enableCookieEncryption', false],
    ['grantFileProtocolExtraPrivileges', true],
  ])('names %s when it is %s', (fuse, value) => {
    const changed = clone();
    changed.electronFuses![fuse] = value;
    expect(fuseProblems(changed)).toEqual([expect.stringContaining(`electronFuses.${fuse} must be ${!value}`)]);
  });

  it('names a fuse that is left out', () => {
    const changed = clone();
    delete changed.electronFuses!.onlyLoadAppFromAsar;
    expect(fuseProblems(changed)).toEqual([expect.stringContaining('onlyLoadAppFromAsar')]);
  });
});

describe('electron-builder.yml installers', () => {
  it('has what deb, rpm, AppImage, NSIS, MSI, dmg and pkg need', () => {
    expect(installerProblems(config, packageJson, readReal)).toEqual([]);
  });

  it.each<[string, (c: Record<string, Record<string, unknown>>) => void, string]>([
    ['an MSI installed per user', (c) => (c.msi!.perMachine = false), 'msi.perMachine'],
    ['an NSIS installer per user', (c) => (c.nsis!.perMachine = false), 'nsis.perMachine'],
    ['a maintainer without an email', (c) => (c.linux!.maintainer = 'IT'), 'linux.maintainer'],
    ['no hardened runtime', (c) => (c.mac!.hardenedRuntime = false), 'mac.hardenedRuntime'],
    ['no notarisation', (c) => (c.mac!.notarize = false), 'mac.notarize'],
    ['no rpm target', (c) => (c.linux!.target = ['deb', 'AppImage']), 'linux.target must include rpm'],
    ['no desktop entry', (c) => delete c.linux!.desktop, 'linux.desktop.entry needs Name'],
    ['an http update feed', (c) => (c.publish!.url = 'http://updates.lab.example'), 'publish'],
    ['unverified Windows updates', (c) => (c.win!.verifyUpdateCodeSignature = false), 'verifyUpdateCodeSignature'],
  ])('refuses %s', (_what, change, expected) => {
    const changed = clone();
    change(changed);
    expect(installerProblems(changed, packageJson, readReal)).toEqual([expect.stringContaining(expected)]);
  });

  it('refuses a missing homepage (deb and rpm need it)', () => {
    const { homepage: _homepage, ...rest } = packageJson;
    expect(installerProblems(config, rest, readReal)).toEqual([expect.stringContaining('homepage')]);
  });

  it('refuses a missing or wrongly sized Linux icon', () => {
    const read: ReadFile = (path) =>
      path.endsWith('/48x48.png')
        ? undefined
        : path.endsWith('/64x64.png')
          ? readReal('build/icons/32x32.png')
          : readReal(path);
    expect(installerProblems(config, packageJson, read)).toEqual([
      expect.stringContaining('48x48.png must be a 48×48 PNG'),
      expect.stringContaining('64x64.png must be a 64×64 PNG'),
    ]);
  });

  it('refuses macOS targets without the zip the in-app updater installs from', () => {
    const changed = clone();
    changed.mac = { ...changed.mac, target: ['dmg', 'pkg'] };
    expect(installerProblems(changed, packageJson, readReal)).toEqual(['mac.target must include zip']);
  });

  it('refuses a Windows icon without a 256×256 image and entitlements that disable library validation', () => {
    const png = readReal('build/icons/32x32.png')!;
    const read: ReadFile = (path) =>
      path === 'build/icon.ico'
        ? icoFromPngs([[32, png]])
        : path === 'build/entitlements.mac.plist'
          ? Buffer.from('<key>com.apple.security.cs.disable-library-validation</key><true/>')
          : readReal(path);
    expect(installerProblems(config, packageJson, read)).toEqual([
      expect.stringContaining('win.icon'),
      expect.stringContaining('library validation'),
    ]);
    expect(icnsFromPngs([['icp5', png]]).toString('latin1', 0, 4)).toBe('icns');
  });
});
