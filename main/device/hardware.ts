import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandRunner } from '../platform';
import { NullHardwareKeyProvider, type HardwareKeyProvider } from './key';
import { DEFAULT_TCTI, TpmKeyProvider } from './tpm/tpm2-tools';

/** The kernel's TPM resource manager device, whose presence means a usable TPM 2.0. */
export const TPM_RESOURCE_MANAGER = '/dev/tpmrm0';

/** What {@link hardwareKeyProviderFor} looks at. */
export interface HardwareKeyChoice {
  readonly platform: NodeJS.Platform;
  readonly commands: CommandRunner;
  /** The installation's data folder; the TPM key blobs go in its `tpm-key` folder. */
  readonly userData: string;
  /** A tpm2-tools TCTI to use instead of the kernel resource manager (a test's swtpm). */
  readonly tcti?: string;
  /** Whether a path exists; `fs.existsSync` unless a test says otherwise. */
  readonly exists?: (path: string) => boolean;
}

/**
 * The hardware key store this installation uses for its device key.
 *
 * On Linux: the TPM 2.0 through tpm2-tools when a TCTI is given or the kernel resource manager
 * (`/dev/tpmrm0`) exists. Anywhere else, and on Windows and macOS until the signed helper exists
 * (docs/protocol.md, "Hardware key helper"), none: the key is then a software key and says so.
 * A TPM that is present but unusable (tpm2-tools missing, no access to the device) is logged by
 * the key store, which then falls back to a software key.
 */
export function hardwareKeyProviderFor(choice: HardwareKeyChoice): HardwareKeyProvider {
  if (choice.platform !== 'linux') return new NullHardwareKeyProvider();
  const exists = choice.exists ?? existsSync;
  if (choice.tcti === undefined && !exists(TPM_RESOURCE_MANAGER)) return new NullHardwareKeyProvider();
  return new TpmKeyProvider({
    commands: choice.commands,
    folder: join(choice.userData, 'tpm-key'),
    tcti: choice.tcti ?? DEFAULT_TCTI,
  });
}
