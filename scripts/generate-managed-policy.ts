import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { staleFiles, writeTemplates } from './managed-policy/generate';

/**
 * Generates IT's managed-policy templates and the docs' key table from main/config/schema.ts.
 *
 * `--check` writes nothing and exits 1 when a generated file is stale (what CI and the test run).
 */
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (process.argv.includes('--check')) {
  const stale = await staleFiles(root);
  for (const file of stale) console.error(`${file.path} is ${file.reason}: run npm run generate:managed-policy`);
  process.exitCode = stale.length > 0 ? 1 : 0;
} else {
  const changed = await writeTemplates(root);
  console.log(changed.length > 0 ? `Updated ${changed.join(', ')}` : 'Managed-policy templates are up to date.');
}
