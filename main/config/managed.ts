import { readFile } from 'node:fs/promises';
import { z } from 'zod';

/**
 * Settings IT can deploy to managed laptops (one required: the gateway URL) and lock.
 *
 * Read from a JSON policy file (Linux `/etc/clearance/policy.json`, macOS
 * `/Library/Managed Preferences/com.lab.clearance.json`, Windows `%ProgramData%\Clearance\policy.json`,
 * the path templates in `build/managed-policy/`), then from `CLEARANCE_*` environment variables in development.
 */
export const ManagedConfig = z
  .object({
    gatewayUrl: z.url({ protocol: /^https?$/ }).optional(),
    /** Override the identity provider the gateway's discovery names. */
    authority: z.url({ protocol: /^https$/ }).optional(),
    clientId: z.string().min(1).optional(),
    /** Pin the entitlement signing keys (JWKs) instead of trusting the gateway's JWKS. */
    pinnedEntitlementKeys: z.array(z.record(z.string(), z.unknown())).optional(),
    /** Allow persisting tokens when the Linux secret store is `basic_text` (not recommended). */
    allowBasicTextTokenCache: z.boolean().optional(),
    /** Extra https hosts the app may open in the system browser. */
    externalHosts: z.array(z.string()).optional(),
    /** Settings the user may not change in the app. */
    locks: z.array(z.enum(['gatewayUrl', 'theme', 'telemetry'])).optional(),
  })
  .strict();
export type ManagedConfig = z.infer<typeof ManagedConfig>;

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
