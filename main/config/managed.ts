import type { CommandRunner } from '../platform';
import { readDarwinPolicy } from './darwin';
import { readLinuxPolicy } from './linux';
import { ROOT_OWNED, type OwnershipRule } from './ownership';
import { evaluatePolicy, type ManagedPolicy, type PolicyStoreRead } from './policy';
import { ManagedConfig } from './schema';
import { readWindowsPolicy } from './windows';

export { ManagedConfig };
export type { ManagedPolicy };

/** Where to read managed configuration; every path is injectable so tests and the harness can use their own. */
export interface ManagedPolicyOptions {
  readonly platform: NodeJS.Platform;
  readonly commands: CommandRunner;
  /** Owner policy files must have: root on a real device (the default). */
  readonly ownership?: OwnershipRule;
  /** Linux: `/etc/clearance`. */
  readonly linuxDir?: string;
  /** macOS: `/Library/Managed Preferences`. */
  readonly darwinDir?: string;
  /** macOS: the signed-in OS user's short name, for per-user profiles. */
  readonly userName?: string;
  /** Windows: `reg.exe` by absolute path. */
  readonly regExe?: string;
}

/**
 * Reads and evaluates this device's managed configuration from the operating system's policy store.
 *
 * Never reads environment variables. Never throws: a reader that fails makes the policy `invalid`
 * (the app stops and says why) rather than unmanaged.
 */
export async function readManagedPolicy(options: ManagedPolicyOptions): Promise<ManagedPolicy> {
  const ownership = options.ownership ?? ROOT_OWNED;
  let read: PolicyStoreRead;
  try {
    if (options.platform === 'win32') read = await readWindowsPolicy(options.commands, options.regExe);
    else if (options.platform === 'darwin') {
      read = await readDarwinPolicy({
        dir: options.darwinDir,
        userName: options.userName,
        commands: options.commands,
        ownership,
      });
    } else read = await readLinuxPolicy({ dir: options.linuxDir, ownership });
  } catch (error) {
    read = {
      values: [],
      // Stryker disable next-line BooleanLiteral: the read carries a problem, and a policy with problems is present whatever the reader says (policy.ts)
      present: true,
      problems: [
        {
          location: 'managed configuration',
          message: `Managed configuration could not be read: ${error instanceof Error ? error.message : String(error)}`,
        },
      ],
    };
  }
  return evaluatePolicy(read);
}

/** What the app starts with besides managed policy: the gateway and, in development only, its CA file. */
export interface StartupSettings {
  readonly gatewayUrl?: string;
  readonly developmentCaFile?: string;
}

/**
 * The gateway URL and development CA the app starts with.
 *
 * A packaged app takes the gateway only from managed policy and never reads the environment; a
 * development build falls back to `CLEARANCE_GATEWAY_URL` and `CLEARANCE_DEV_CA_FILE`.
 */
export function resolveStartupSettings(
  policy: ManagedPolicy,
  packaged: boolean,
  env: Readonly<Record<string, string | undefined>>,
): StartupSettings {
  const fromPolicy = policy.view.state === 'invalid' ? undefined : policy.config.gatewayUrl;
  if (packaged) return fromPolicy ? { gatewayUrl: fromPolicy } : {};
  const gatewayUrl = fromPolicy ?? env.CLEARANCE_GATEWAY_URL;
  const developmentCaFile = env.CLEARANCE_DEV_CA_FILE;
  return { ...(gatewayUrl ? { gatewayUrl } : {}), ...(developmentCaFile ? { developmentCaFile } : {}) };
}
