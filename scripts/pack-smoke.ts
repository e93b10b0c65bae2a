import { listPackage, statFile } from '@electron/asar';
import { build, Platform } from 'electron-builder';
import { load, dump } from 'js-yaml';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { disallowedAsarEntries } from './pack-contents';

/**
 * `npm run test:pack`: packs the app with electron-builder `--linux dir` into a stand-in Electron
 * (the real binary cannot be fetched here), lists `app.asar` and fails on any file outside the
 * allow-list in scripts/pack-contents.ts. Prints the asar's size (docs/performance.md).
 *
 * Fuses are left out of this pack only: flipping them needs the real Electron binary's sentinel.
 * scripts/security-check.ts checks that electron-builder.yml asks for every one.
 */

/** The files electron-builder copies from an Electron distribution, as empty stand-ins. */
const STAND_IN_FILES = [
  'LICENSE',
  'LICENSES.chromium.html',
  'icudtl.dat',
  'resources.pak',
  'chrome_100_percent.pak',
  'chrome_200_percent.pak',
  'snapshot_blob.bin',
  'v8_context_snapshot.bin',
  'chrome-sandbox',
  'chrome_crashpad_handler',
  'libffmpeg.so',
];

async function makeStandInElectron(dir: string, version: string): Promise<void> {
  await mkdir(join(dir, 'locales'), { recursive: true });
  await mkdir(join(dir, 'resources'), { recursive: true });
  await writeFile(join(dir, 'electron'), '#!/bin/sh\necho "stand-in Electron: cannot run"\nexit 1\n');
  await chmod(join(dir, 'electron'), 0o755);
  await writeFile(join(dir, 'version'), `v${version}`);
  await writeFile(join(dir, 'locales', 'en-US.pak'), '');
  await Promise.all(STAND_IN_FILES.map((name) => writeFile(join(dir, name), '')));
}

async function main(): Promise<void> {
  const root = resolve('.');
  for (const bundle of ['dist/main/index.cjs', 'dist/preload/index.cjs', 'dist/renderer/index.html']) {
    await stat(bundle).catch(() => {
      throw new Error(`${bundle} is missing: run \`npm run build\` first`);
    });
  }
  const { version } = JSON.parse(await readFile('node_modules/electron/package.json', 'utf8')) as { version: string };
  const work = await mkdtemp(join(tmpdir(), 'clearance-pack-'));
  try {
    const electronDist = join(work, 'electron-dist');
    await makeStandInElectron(electronDist, version);
    const config = load(await readFile('electron-builder.yml', 'utf8')) as Record<string, unknown>;
    delete config.electronFuses;
    const directories = (config.directories ?? {}) as Record<string, unknown>;
    config.directories = { ...directories, output: join(work, 'out') };
    config.electronDist = electronDist;
    config.electronVersion = version;
    config.publish = null;
    const configPath = join(work, 'electron-builder.yml');
    await writeFile(configPath, dump(config));

    const started = Date.now();
    await build({
      projectDir: root,
      config: configPath,
      targets: Platform.LINUX.createTarget('dir'),
      publish: 'never',
    });
    const asarPath = join(work, 'out', 'linux-unpacked', 'resources', 'app.asar');
    const entries = listPackage(asarPath, { isPack: false }).map((entry) => entry.replaceAll('\\', '/'));
    const files: string[] = [];
    for (const entry of entries) {
      const info = statFile(asarPath, entry.replace(/^\//, ''), false);
      if (!('files' in info)) files.push(entry);
    }
    const unpacked = await stat(join(work, 'out', 'linux-unpacked', 'resources', 'app.asar.unpacked')).then(
      () => true,
      () => false,
    );
    const { size } = await stat(asarPath);
    const bad = disallowedAsarEntries(files);
    console.log(
      `Pack smoke: app.asar ${(size / 1024 / 1024).toFixed(2)} MB (${size} bytes), ${files.length} files, packed in ${((Date.now() - started) / 1000).toFixed(1)} s.`,
    );
    if (unpacked) bad.push('app.asar.unpacked/ exists (unpacked files ship beside the archive)');
    if (bad.length > 0) {
      console.error(`Pack smoke: ${bad.length} file(s) outside the allow-list:\n  ${bad.join('\n  ')}`);
      process.exitCode = 1;
      return;
    }
    console.log('Pack smoke: every file in app.asar is on the allow-list.');
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
