import { readFileSync, writeFileSync } from 'node:fs';

/**
 * Merges Stryker incremental reports (mutation-testing-report-schema) into the committed one.
 *
 * `npx tsx scripts/mutation-merge.ts stryker-incremental.json /tmp/run-a.json [/tmp/run-b.json …]`
 *
 * A file's run made with a private `--incrementalFile` (so a partial run never changes what CI
 * counts) joins the committed file this way; then `npm run test:mutation:ci` with the file in
 * `baseline` reuses its results. Test ids are per report, so each later report's tests are matched
 * by test file and name, or renumbered, in its mutants' `coveredBy` and `killedBy`. A later report
 * wins for the source files and test files it holds. Stryker compares sources before reusing a
 * result, so a stale entry only costs a rerun, never a wrong score.
 */
interface Test {
  id: string;
  name: string;
  location?: unknown;
}
interface TestFile {
  source?: string;
  tests: Test[];
}
interface Mutant {
  coveredBy?: string[];
  killedBy?: string[];
  [key: string]: unknown;
}
interface Report {
  files: Record<string, { mutants: Mutant[]; [key: string]: unknown }>;
  testFiles?: Record<string, TestFile>;
  [key: string]: unknown;
}

const [target, ...sources] = process.argv.slice(2);
if (!target || sources.length === 0) {
  console.error('usage: tsx scripts/mutation-merge.ts <committed.json> <run.json> [<run.json> …]');
  process.exit(2);
}

const merged = JSON.parse(readFileSync(target, 'utf8')) as Report;
merged.testFiles ??= {};
let nextId = 1 + Math.max(-1, ...allTestIds(merged).map(Number).filter(Number.isFinite));

for (const path of sources) {
  const report = JSON.parse(readFileSync(path, 'utf8')) as Report;
  const renumber = new Map<string, string>();
  for (const [file, testFile] of Object.entries(report.testFiles ?? {})) {
    const existing = merged.testFiles[file];
    const byName = new Map((existing?.tests ?? []).map((test) => [test.name, test.id]));
    const tests = testFile.tests.map((test) => {
      const id = byName.get(test.name) ?? String(nextId++);
      renumber.set(test.id, id);
      return { ...test, id };
    });
    // Tests the earlier report knew in this file and this run did not see keep their ids.
    const seen = new Set(tests.map((test) => test.name));
    const kept = (existing?.tests ?? []).filter((test) => !seen.has(test.name));
    merged.testFiles[file] = { ...testFile, tests: [...tests, ...kept] };
  }
  const map = (ids: string[] | undefined) => ids?.map((id) => renumber.get(id) ?? id);
  for (const [file, result] of Object.entries(report.files)) {
    merged.files[file] = {
      ...result,
      mutants: result.mutants.map((mutant) => ({
        ...mutant,
        ...(mutant.coveredBy ? { coveredBy: map(mutant.coveredBy) } : {}),
        ...(mutant.killedBy ? { killedBy: map(mutant.killedBy) } : {}),
      })),
    };
  }
  console.log(`${path}: ${Object.keys(report.files).join(', ')}`);
}

writeFileSync(target, JSON.stringify(merged, null, 2));
console.log(`${target}: ${Object.keys(merged.files).length} files, ${allTestIds(merged).length} tests`);

function allTestIds(report: Report): string[] {
  return Object.values(report.testFiles ?? {}).flatMap((file) => file.tests.map((test) => test.id));
}
