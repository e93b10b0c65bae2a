import { readFile, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as prettier from 'prettier';
import { DOC_PATH, renderDocTable, renderTemplates, withDocTable } from './templates';

/** A generated file whose text on disk differs from what the schema produces. */
export interface StaleFile {
  readonly path: string;
  readonly reason: 'missing' | 'different';
}

/** Formats text the way `prettier --check` expects, for the file types Prettier handles. */
async function formatted(path: string, text: string, root: string): Promise<string> {
  if (!/\.(json|md)$/.test(path)) return text;
  const options = (await prettier.resolveConfig(join(root, path))) ?? {};
  return prettier.format(text, { ...options, filepath: path });
}

/** Every generated file with its expected text, the doc's table included (read from `root`). */
export async function expectedFiles(root: string): Promise<ReadonlyMap<string, string>> {
  const files = new Map<string, string>();
  for (const [path, text] of renderTemplates()) files.set(path, await formatted(path, text, root));
  const doc = await readFile(join(root, DOC_PATH), 'utf8');
  files.set(DOC_PATH, await formatted(DOC_PATH, withDocTable(doc, renderDocTable()), root));
  return files;
}

/** The generated files under `root` that are missing or differ from what the schema produces. */
export async function staleFiles(root: string): Promise<readonly StaleFile[]> {
  const stale: StaleFile[] = [];
  for (const [path, text] of await expectedFiles(root)) {
    const onDisk = await readFile(join(root, path), 'utf8').catch(() => undefined);
    if (onDisk === undefined) stale.push({ path, reason: 'missing' });
    else if (onDisk !== text) stale.push({ path, reason: 'different' });
  }
  return stale;
}

/** Writes every generated file under `root`; returns the paths it changed. */
export async function writeTemplates(root: string): Promise<readonly string[]> {
  const changed: string[] = [];
  for (const [path, text] of await expectedFiles(root)) {
    const target = join(root, path);
    const onDisk = await readFile(target, 'utf8').catch(() => undefined);
    if (onDisk === text) continue;
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, text);
    changed.push(path);
  }
  return changed;
}
