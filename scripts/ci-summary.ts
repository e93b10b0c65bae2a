import { readFile } from 'node:fs/promises';

/**
 * Prints one plain closing line per test runner ("unit: N passed, N failed") from their JSON reports,
 * so CI's log says what ran whatever each runner's own last line looks like.
 */
async function count(file: string, read: (json: Record<string, unknown>) => [number, number, number]) {
  try {
    return read(JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>);
  } catch {
    return undefined;
  }
}

const unit = await count('test-reports/unit.json', (json) => [
  Number(json.numPassedTests ?? 0),
  Number(json.numFailedTests ?? 0),
  Number(json.numPendingTests ?? 0) + Number(json.numTodoTests ?? 0),
]);
const e2e = await count('test-reports/e2e.json', (json) => {
  const stats = json.stats as Record<string, number> | undefined;
  return [stats?.expected ?? 0, (stats?.unexpected ?? 0) + (stats?.flaky ?? 0), stats?.skipped ?? 0];
});
for (const [name, counts] of [
  ['unit', unit],
  ['e2e', e2e],
] as const) {
  if (counts) console.log(`${name}: ${counts[0]} passed, ${counts[1]} failed, ${counts[2]} skipped`);
  else console.log(`${name}: no report found`);
}
