/** What `SecretStore.backend()` answers: the OS protects the key, a hard-coded key does, or nobody knows. */
export type SecretBackendKind = 'os' | 'basic_text' | 'unknown';

/** Linux `safeStorage` backends that keep the key in a real OS keyring. */
const LINUX_KEYRING_BACKENDS: ReadonlySet<string> = new Set(['gnome_libsecret', 'kwallet', 'kwallet5', 'kwallet6']);

/**
 * Maps the platform and Electron's selected Linux storage backend to what the app relies on.
 *
 * macOS (Keychain) and Windows (DPAPI) always use the OS. On Linux only a known keyring counts as `os`;
 * `basic_text` (a hard-coded key) stays `basic_text`, and anything Electron adds later is `unknown`
 * until it is reviewed, so a new name never widens trust.
 */
export function secretBackendKind(platform: NodeJS.Platform, linuxBackend: () => string): SecretBackendKind {
  if (platform !== 'linux') return 'os';
  const backend = linuxBackend();
  if (backend === 'basic_text') return 'basic_text';
  return LINUX_KEYRING_BACKENDS.has(backend) ? 'os' : 'unknown';
}
