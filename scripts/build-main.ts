import { build, type BuildOptions } from 'esbuild';
import { join } from 'node:path';

/**
 * Bundles the Electron main process and the preload into `outDir` (CommonJS, as Electron loads them).
 *
 * The preload runs sandboxed, so it is bundled whole: a sandboxed preload can `require` only `electron`.
 * Everything else is bundled too: the packaged app has no node_modules (scripts/pack-smoke.ts).
 */
export function mainBuildOptions(outDir = 'dist'): BuildOptions[] {
  const common: BuildOptions = {
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node22',
    sourcemap: true,
    external: ['electron'],
    logLevel: 'warning',
  };
  return [
    { ...common, entryPoints: ['main/electron/index.ts'], outfile: join(outDir, 'main', 'index.cjs') },
    { ...common, entryPoints: ['main/preload/index.ts'], outfile: join(outDir, 'preload', 'index.cjs'), minify: true },
  ];
}

if (process.argv[1]?.endsWith('build-main.ts')) {
  await Promise.all(mainBuildOptions().map((options) => build(options)));
  console.log('Built dist/main/index.cjs and dist/preload/index.cjs');
}
