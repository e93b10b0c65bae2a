import { mkdirSync, readdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildManifest, POLICY_MANIFEST_FILE, readPolicyCandidate } from './candidate';
import { PolicyEngine } from './engine';

/** What `publishPolicies` did. */
export interface PublishResult {
  readonly files: readonly string[];
  readonly removed: readonly string[];
  readonly policies: number;
}

/**
 * Publishes the `.cedar` files of `sourceDir` into the folder a gateway watches.
 *
 * The set is validated first exactly as the gateway will (nothing is written when it fails).
 * Each file is written beside its target and renamed over it, files the set no longer has
 * are removed, and `policy-manifest.json` is renamed into place last: until then the gateway
 * sees a folder that does not match the manifest in force and keeps the previous set, so no
 * half-published mix is ever applied, and a removal carried by the new manifest is accepted
 * as intended.
 */
export function publishPolicies(
  sourceDir: string,
  targetDir: string,
  options: { readonly publishedBy?: string; readonly now?: Date },
): PublishResult {
  const candidate = readPolicyCandidate(sourceDir);
  const engine = PolicyEngine.create({ policiesDir: sourceDir });
  const check = engine.policies.length;
  // Only the check at start is needed here, not the worker thread later reloads would use.
  void engine.close();
  mkdirSync(targetDir, { recursive: true });
  const stamp = `${process.pid}-${Date.now()}`;
  const place = (name: string, content: string) => {
    const temporary = join(targetDir, `.${name}.${stamp}.tmp`);
    writeFileSync(temporary, content, { mode: 0o644 });
    renameSync(temporary, join(targetDir, name));
  };
  for (const [name, text] of candidate.files) place(name, text);
  const removed = readdirSync(targetDir).filter((name) => name.endsWith('.cedar') && !candidate.files.has(name));
  for (const name of removed) unlinkSync(join(targetDir, name));
  const manifest = buildManifest(candidate.files, options.publishedBy, options.now);
  place(POLICY_MANIFEST_FILE, `${JSON.stringify(manifest, null, 2)}\n`);
  return { files: [...candidate.files.keys()], removed, policies: check };
}
