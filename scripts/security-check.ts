import Ajv from 'ajv';
import { load } from 'js-yaml';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { fuseProblems, installerProblems } from './installer-config';

/**
 * Static security checks in `npm test`: Electronegativity on main/ (fails on any HIGH or MEDIUM row,
 * since the tool itself exits 0 with findings) and electron-builder.yml against electron-builder's schema.
 */
const run = promisify(execFile);

/** A finding a person has reviewed: which check, in which file, and why it is safe. */
export interface ReviewedFinding {
  readonly check: string;
  readonly file: string;
  readonly why: string;
}

/** Rows of Electronegativity's CSV that should fail the build (HIGH or MEDIUM, not reviewed). */
export function seriousFindings(csv: string, reviewed: readonly ReviewedFinding[] = []): string[] {
  const lines = csv.split(/\r?\n/).filter((line) => line.trim() !== '');
  const header = lines[0]?.split(',') ?? [];
  const severity = header.findIndex((column) => column.trim().toLowerCase() === 'severity');
  return lines.slice(1).filter((line) => {
    const cells = line.split(',');
    const level = (severity >= 0 ? cells[severity] : line)?.toUpperCase() ?? '';
    const check = cells[0]?.replaceAll('"', '') ?? '';
    const file = cells[3]?.replaceAll('"', '') ?? '';
    if (reviewed.some((r) => r.check === check && r.file === file)) return false;
    return level.includes('HIGH') || level.includes('MEDIUM');
  });
}

async function electronegativity(): Promise<boolean> {
  const { version: electronVersion } = JSON.parse(await readFile('node_modules/electron/package.json', 'utf8')) as {
    version: string;
  };
  const out = join(await mkdtemp(join(tmpdir(), 'clearance-eneg-')), 'report.csv');
  const cli = 'node_modules/@doyensec/electronegativity/dist/index.js';
  const offline = 'scripts/electronegativity-offline.cjs';
  await run(
    process.execPath,
    ['--require', `./${offline}`, cli, '-i', 'main', '-o', out, '-r', '-e', electronVersion],
    {
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  const reviewed = JSON.parse(await readFile('scripts/electronegativity-reviewed.json', 'utf8')) as ReviewedFinding[];
  const csv = await readFile(out, 'utf8');
  const findings = seriousFindings(csv, reviewed);
  const reviewedCount = seriousFindings(csv).length - findings.length;
  if (reviewedCount > 0)
    console.log(
      `Electronegativity: ${reviewedCount} manual-review finding(s) reviewed in scripts/electronegativity-reviewed.json.`,
    );
  if (findings.length > 0) {
    console.error(`Electronegativity: ${findings.length} HIGH/MEDIUM finding(s) in main/:\n${findings.join('\n')}`);
    return false;
  }
  console.log('Electronegativity: no HIGH or MEDIUM findings in main/.');
  return true;
}

async function builderConfig(): Promise<boolean> {
  const schema = JSON.parse(await readFile('node_modules/app-builder-lib/scheme.json', 'utf8')) as object;
  const config = load(await readFile('electron-builder.yml', 'utf8'));
  const ajv = new Ajv({ allErrors: true, strict: false });
  const validate = ajv.compile(schema);
  if (!validate(config)) {
    console.error('electron-builder.yml does not match electron-builder schema:');
    for (const error of validate.errors ?? []) console.error(`  ${error.instancePath || '(root)'} ${error.message}`);
    return false;
  }
  console.log('electron-builder.yml: valid against app-builder-lib/scheme.json.');
  const packageJson = JSON.parse(await readFile('package.json', 'utf8')) as Record<string, unknown>;
  const read = (path: string) => {
    try {
      return readFileSync(path);
    } catch {
      return undefined;
    }
  };
  const problems = [
    ...fuseProblems(config as Record<string, unknown>),
    ...installerProblems(config as Record<string, unknown>, packageJson, read),
  ];
  if (problems.length > 0) {
    console.error(`electron-builder.yml: ${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
    return false;
  }
  console.log(
    'electron-builder.yml: all seven fuses asked for; deb/rpm/AppImage, NSIS/MSI, dmg/pkg settings complete.',
  );
  return true;
}

if (process.argv[1]?.endsWith('security-check.ts')) {
  const results = [await electronegativity(), await builderConfig()];
  if (results.includes(false)) process.exit(1);
}
