import { build, type BuildOptions } from 'esbuild';

/**
 * Bundles the Electron main process and the preload into dist/ (CommonJS, as Electron loads them).
 *
 * The preload runs sandboxed, so it is bundled whole: a sandboxed preload can `require` only `electron`.
 */
const common: BuildOptions = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node22',
  sourcemap: true,
  external: ['electron'],
  logLevel: 'warning',
};

await Promise.all([
  build({ ...common, entryPoints: ['main/electron/index.ts'], outfile: 'dist/main/index.cjs' }),
  build({ ...common, entryPoints: ['main/preload/index.ts'], outfile: 'dist/preload/index.cjs', minify: true }),
]);
console.log('Built dist/main/index.cjs and dist/preload/index.cjs');
