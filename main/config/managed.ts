import { readFile } from 'node:fs/promises';

import { ManagedConfig } from './schema';

export { ManagedConfig };

/** Where the managed policy file lives on each platform. */
export function managedPolicyPath(platform: NodeJS.Platform, env: NodeJS.ProcessEnv): string {
  if (platform === 'darwin') return '/Library/Managed Preferences/com.lab.clearance.json';
  if (platform === 'win32') return `${env.ProgramData ?? 'C:\\ProgramData'}\\Clearance\\policy.json`;
  return '/etc/clearance/policy.json';
}

/** The outcome of reading managed config: the settings, whether a policy file was present, and any problem. */
export interface ManagedConfigRead {
  readonly config: ManagedConfig;
  readonly present: boolean;
  readonly error?: string;
}

/**
 * Reads the managed policy file; a missing file is not an error, a malformed one is reported and ignored.
 */
export async function readManagedConfig(path: string): Promise<ManagedConfigRead> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { config: {}, present: false };
    return {
      config: {},
      present: false,
      error: `Could not read managed settings at ${path}: ${(error as Error).message}`,
    };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return {
      config: {},
      present: true,
      error: `Managed settings at ${path} are not valid JSON: ${(error as Error).message}`,
    };
  }
  const parsed = ManagedConfig.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    return { config: {}, present: true, error: `Managed settings at ${path} were ignored: ${issues}` };
  }
  return { config: parsed.data, present: true };
}
