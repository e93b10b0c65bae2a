/**
 * What may ship inside `app.asar`: the built bundles, `package.json` and licence files, nothing else.
 *
 * Each rule is a pattern on the archive path (forward slashes, leading `/`).
 */
export const ALLOWED_ASAR_FILES: readonly RegExp[] = [
  /^\/package\.json$/,
  /^\/dist\/main\/index\.cjs$/,
  /^\/dist\/preload\/index\.cjs$/,
  /^\/dist\/renderer\/index\.html$/,
  /^\/dist\/renderer\/assets\/[\w.-]+\.(?:js|css|woff2?|svg|png)$/,
  /^\/(?:[\w.-]+\/)*(?:LICEN[CS]E|NOTICE|COPYING)(?:[.-][\w.-]+)?$/i,
  /^\/(?:[\w.-]+\/)*[\w.-]+\.LICEN[CS]E\.txt$/i,
];

/** Patterns that are refused even where an allow rule would match, with the reason printed. */
const REFUSED: readonly (readonly [RegExp, string])[] = [
  [/\.node$/, 'native module'],
  [/\.map$/, 'source map'],
  [/(?:^|\/)node_modules\//, 'a dependency folder (every runtime dependency must be bundled)'],
  [/\.(?:test|spec|bench)\.[cm]?[jt]sx?$/, 'test'],
  [/(?:^|\/)(?:gateway|e2e|testing|fixtures)\//, 'server or test code'],
];

/**
 * The archive files that may not ship, each with the reason.
 */
export function disallowedAsarEntries(files: readonly string[]): string[] {
  const bad: string[] = [];
  for (const file of files) {
    const refused = REFUSED.find(([pattern]) => pattern.test(file));
    if (refused) bad.push(`${file} (${refused[1]})`);
    else if (!ALLOWED_ASAR_FILES.some((pattern) => pattern.test(file))) bad.push(`${file} (not on the allow-list)`);
  }
  return bad;
}
