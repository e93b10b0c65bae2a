import { REQUIRED_FUSES } from '../main/device/posture/fuses';
import { LINUX_ICON_SIZES } from './make-icons';

/** The files the checks read, looked up by path relative to the repository. */
export type ReadFile = (path: string) => Buffer | undefined;

type Config = Record<string, unknown>;

function section(config: Config, key: string): Config {
  const value = config[key];
  return value !== null && typeof value === 'object' ? (value as Config) : {};
}

function targets(config: Config): string[] {
  const target = config.target;
  const list = Array.isArray(target) ? target : target === undefined ? [] : [target];
  return list.map((t) => (typeof t === 'string' ? t : String((t as Config).target)));
}

/** Width and height of a PNG, or undefined when the bytes are not a PNG. */
export function pngSize(bytes: Buffer): { width: number; height: number } | undefined {
  if (bytes.length < 24 || bytes.toString('latin1', 1, 4) !== 'PNG') return undefined;
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

/**
 * The fuses electron-builder.yml does not set to the state the app requires (issue 13: all seven).
 */
export function fuseProblems(config: Config): string[] {
  const fuses = section(config, 'electronFuses');
  return Object.entries(REQUIRED_FUSES)
    .filter(([name, wanted]) => fuses[name] !== wanted)
    .map(([name, wanted]) => `electronFuses.${name} must be ${wanted} (is ${String(fuses[name])})`);
}

/**
 * What keeps electron-builder.yml from producing the installers IT deploys (docs/it-deployment.md).
 *
 * Checks what the schema cannot: deb/rpm metadata, icons at every size, per-machine Windows installs,
 * publisher verification of updates, the macOS hardened runtime and notarisation, an https update feed.
 */
export function installerProblems(config: Config, packageJson: Config, read: ReadFile): string[] {
  const problems: string[] = [];
  const linux = section(config, 'linux');
  for (const target of ['deb', 'rpm', 'AppImage']) {
    if (!targets(linux).includes(target)) problems.push(`linux.target must include ${target}`);
  }
  if (typeof packageJson.homepage !== 'string' || !packageJson.homepage.startsWith('https://'))
    problems.push('package.json homepage (an https URL) is required by deb and rpm');
  if (typeof linux.maintainer !== 'string' || !/<[^@\s>]+@[^\s>]+>/.test(linux.maintainer))
    problems.push('linux.maintainer must be "Name <email>" (deb and rpm)');
  const entry = section(section(linux, 'desktop'), 'entry');
  const missingEntry = ['Name', 'Comment', 'Categories', 'StartupWMClass'].filter(
    (key) => typeof entry[key] !== 'string' || entry[key] === '',
  );
  if (missingEntry.length > 0) problems.push(`linux.desktop.entry needs ${missingEntry.join(', ')}`);
  const iconDir = typeof linux.icon === 'string' ? linux.icon : 'build/icons';
  for (const size of LINUX_ICON_SIZES) {
    const bytes = read(`${iconDir}/${size}x${size}.png`);
    const dims = bytes && pngSize(bytes);
    if (!dims || dims.width !== size || dims.height !== size)
      problems.push(`${iconDir}/${size}x${size}.png must be a ${size}×${size} PNG`);
  }

  const win = section(config, 'win');
  for (const target of ['nsis', 'msi'])
    if (!targets(win).includes(target)) problems.push(`win.target must include ${target}`);
  const nsis = section(config, 'nsis');
  if (nsis.perMachine !== true) problems.push('nsis.perMachine must be true');
  if (nsis.oneClick !== false) problems.push('nsis.oneClick must be false (a per-machine install asks to elevate)');
  const msi = section(config, 'msi');
  if (msi.perMachine !== true) problems.push('msi.perMachine must be true');
  if (typeof msi.upgradeCode !== 'string')
    problems.push('msi.upgradeCode must be fixed so upgrades replace the install');
  if (win.verifyUpdateCodeSignature === false) problems.push('win.verifyUpdateCodeSignature must not be false');
  const publisher = section(win, 'signtoolOptions').publisherName;
  if (!(Array.isArray(publisher) ? publisher.length > 0 : typeof publisher === 'string'))
    problems.push('win.signtoolOptions.publisherName is required: updates are checked against it');
  const ico = read(typeof win.icon === 'string' ? win.icon : 'build/icon.ico');
  if (!ico || ico.readUInt16LE(2) !== 1 || !icoHas256(ico))
    problems.push('win.icon must be an .ico with a 256×256 image');

  const mac = section(config, 'mac');
  // zip: Squirrel.Mac, which electron-updater drives on macOS, installs updates only from the zip.
  for (const target of ['dmg', 'pkg', 'zip'])
    if (!targets(mac).includes(target)) problems.push(`mac.target must include ${target}`);
  if (mac.hardenedRuntime !== true) problems.push('mac.hardenedRuntime must be true');
  if (mac.notarize !== true) problems.push('mac.notarize must be true');
  const icns = read(typeof mac.icon === 'string' ? mac.icon : 'build/icon.icns');
  if (!icns || icns.toString('latin1', 0, 4) !== 'icns') problems.push('mac.icon must be an .icns file');
  const entitlements = read(typeof mac.entitlements === 'string' ? mac.entitlements : 'build/entitlements.mac.plist');
  if (!entitlements) problems.push('mac.entitlements file is missing');
  else if (/disable-library-validation|allow-dyld-environment-variables/.test(entitlements.toString('utf8')))
    problems.push('mac.entitlements must not disable library validation or allow DYLD variables');

  const publish = section(config, 'publish');
  if (publish.provider !== 'generic' || typeof publish.url !== 'string' || !publish.url.startsWith('https://'))
    problems.push('publish must be the generic provider at an https URL');
  return problems;
}

function icoHas256(ico: Buffer): boolean {
  const count = ico.readUInt16LE(4);
  for (let index = 0; index < count; index += 1) {
    const at = 6 + 16 * index;
    if (at + 16 > ico.length) return false;
    if (ico.readUInt8(at) === 0 && ico.readUInt8(at + 1) === 0) return true;
  }
  return false;
}
