import { execFile } from 'node:child_process';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type {
  Adapters,
  AppPaths,
  CommandRunner,
  ExternalBrowser,
  FileSaver,
  HttpClient,
  SecretStore,
} from '../platform';

/**
 * A `SecretStore` for tests and the browser harness: AES-256-GCM under a key held in memory.
 *
 * It stands in for `safeStorage`, whose key lives in the OS keychain; `backend` can be set to
 * `basic_text` to exercise the refusal path.
 */
export class MemorySecretStore implements SecretStore {
  private readonly key: Buffer;

  constructor(
    key: Uint8Array = randomBytes(32),
    private readonly backendName: 'os' | 'basic_text' | 'unknown' = 'os',
  ) {
    this.key = Buffer.from(key);
  }

  isAvailable(): boolean {
    return true;
  }

  backend(): 'os' | 'basic_text' | 'unknown' {
    return this.backendName;
  }

  encrypt(plain: Uint8Array): Uint8Array {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([Buffer.from('v1'), iv, cipher.getAuthTag(), body]);
  }

  decrypt(data: Uint8Array): Uint8Array {
    const buf = Buffer.from(data);
    if (buf.subarray(0, 2).toString() !== 'v1' || buf.length < 30) {
      throw new Error('Encrypted data is not in a format this secret store wrote');
    }
    const decipher = createDecipheriv('aes-256-gcm', this.key, buf.subarray(2, 14));
    decipher.setAuthTag(buf.subarray(14, 30));
    return Buffer.concat([decipher.update(buf.subarray(30)), decipher.final()]);
  }
}

/** Runs commands with `execFile` (no shell) and a timeout. */
export class NodeCommandRunner implements CommandRunner {
  run(command: string, args: readonly string[], options?: { timeoutMs?: number }) {
    return new Promise<{ exitCode: number | null; stdout: string; stderr: string; error?: string }>((resolve) => {
      execFile(
        command,
        [...args],
        { timeout: options?.timeoutMs ?? 5000, maxBuffer: 1024 * 1024, windowsHide: true },
        (error, stdout, stderr) => {
          const code =
            error && typeof (error as NodeJS.ErrnoException).code === 'string'
              ? (error as NodeJS.ErrnoException).code
              : undefined;
          if (code === 'ENOENT' || code === 'EACCES') {
            resolve({ exitCode: null, stdout: '', stderr: '', error: `${command}: ${code}` });
            return;
          }
          const exitCode = error
            ? typeof (error as { code?: unknown }).code === 'number'
              ? (error as { code: number }).code
              : 1
            : 0;
          resolve({ exitCode, stdout: String(stdout), stderr: String(stderr) });
        },
      );
    });
  }
}

/** Options for {@link createNodeAdapters}. */
export interface NodeAdapterOptions {
  readonly paths: AppPaths;
  readonly browser: ExternalBrowser;
  readonly secrets?: SecretStore;
  readonly http?: HttpClient;
  readonly files?: FileSaver;
  readonly commands?: CommandRunner;
}

/** Plain-Node adapters for tests and the browser harness. */
export function createNodeAdapters(options: NodeAdapterOptions): Adapters {
  return {
    secrets: options.secrets ?? new MemorySecretStore(),
    browser: options.browser,
    http: options.http ?? ((input, init) => fetch(input, init)),
    paths: options.paths,
    commands: options.commands ?? new NodeCommandRunner(),
    files: options.files ?? { save: async () => ({}) },
    clock: { now: () => Date.now() },
  };
}
