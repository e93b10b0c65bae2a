/**
 * Adapters: the small interfaces services take instead of importing `electron`.
 *
 * `main/electron/adapters.ts` supplies the Electron implementations; `main/node/adapters.ts`
 * supplies plain-Node ones for tests and the browser harness.
 */

/**
 * Encrypts and decrypts small secrets with the OS secret store (Electron `safeStorage`).
 */
export interface SecretStore {
  /** False when no OS-backed encryption is available at all. */
  isAvailable(): boolean;
  /**
   * The Linux backend `safeStorage` uses; `basic_text` means a hard-coded key, i.e. no real protection.
   * Other platforms answer `os`.
   */
  backend(): 'os' | 'basic_text' | 'unknown';
  encrypt(plain: Uint8Array): Uint8Array;
  decrypt(cipher: Uint8Array): Uint8Array;
}

/** Opens a URL in the user's own browser (RFC 8252: never an embedded login window). */
export interface ExternalBrowser {
  open(url: string): Promise<void>;
}

/** `fetch` as the app may use it (Electron `net.fetch`, which honours the OS proxy and certificates). */
export type HttpClient = (input: string | URL, init?: RequestInit) => Promise<Response>;

/** Where the app may write its state. */
export interface AppPaths {
  /** Per-user app data folder (tokens cache, device key, conversations, entitlements cache). */
  readonly userData: string;
  /** Folder for logs and diagnostics bundles. */
  readonly logs: string;
}

/** The result of running a system command. */
export interface CommandResult {
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Set when the command could not be started at all (not installed, not permitted). */
  readonly error?: string;
}

/** Runs system tools for posture checks: never through a shell, always with a timeout. */
export interface CommandRunner {
  run(command: string, args: readonly string[], options?: { timeoutMs?: number }): Promise<CommandResult>;
}

/** Saves an export where the user chooses (Electron save dialog; the harness returns the content for download). */
export interface FileSaver {
  save(suggestedName: string, content: string): Promise<{ savedTo?: string }>;
}

/** The clock, so expiry logic can be tested. */
export interface Clock {
  now(): number;
}

/** Everything the composition root needs from its shell. */
export interface Adapters {
  readonly secrets: SecretStore;
  readonly browser: ExternalBrowser;
  readonly http: HttpClient;
  readonly paths: AppPaths;
  readonly commands: CommandRunner;
  readonly files: FileSaver;
  readonly clock: Clock;
}
