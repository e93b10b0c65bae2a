import { describe, expect, it } from 'vitest';
import { disallowedAsarEntries } from './pack-contents';

describe('disallowedAsarEntries', () => {
  it('accepts the built bundles, package.json and licences', () => {
    expect(
      disallowedAsarEntries([
        '/package.json',
        '/dist/main/index.cjs',
        '/dist/preload/index.cjs',
        '/dist/renderer/index.html',
        '/dist/renderer/assets/index-k6Jl4qLT.js',
        '/dist/renderer/assets/index-D1UHtK_F.css',
        '/LICENSE',
        '/dist/main/index.cjs.LICENSE.txt',
      ]),
    ).toEqual([]);
  });

  it.each([
    ['/node_modules/better-sqlite3/build/Release/better_sqlite3.node', 'native module'],
    ['/dist/main/index.cjs.map', 'source map'],
    ['/node_modules/zod/index.js', 'dependency folder'],
    ['/dist/main/verify.test.js', 'test'],
    ['/gateway/server.js', 'server or test code'],
    ['/dist/gateway/LICENSE', 'server or test code'],
    ['/scripts/start.js', 'not on the allow-list'],
    ['/dist/main/other.cjs', 'not on the allow-list'],
  ])('refuses %s (%s)', (file, reason) => {
    const bad = disallowedAsarEntries(['/package.json', file]);
    expect(bad).toHaveLength(1);
    expect(bad[0]).toContain(file);
    expect(bad[0]).toContain(reason);
  });
});
