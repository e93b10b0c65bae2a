/**
 * What `npm start` says when Electron's own installer could not fetch the binary.
 *
 * The installer (`electron/install.js`, @electron/get) honours ELECTRON_MIRROR, ELECTRON_CUSTOM_DIR,
 * electron_config_cache and the proxy variables; its last error line names the real cause (a DNS
 * failure, a 404 from a mirror, a checksum mismatch), which is what the person needs to see.
 */
export function installFailureLine(version: string, installerOutput: string, exitCode: number | null): string {
  const lines = installerOutput
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith('at '));
  const cause = (lines.find((line) => /error/i.test(line)) ?? lines.at(-1) ?? `the installer exited with ${exitCode}`)
    .replace(/\s+/g, ' ')
    .slice(0, 200);
  return (
    `Electron ${version} could not be downloaded (${cause}); set ELECTRON_MIRROR or electron_config_cache ` +
    'to a reachable mirror or a cache holding it, then run npm start again. Opening the browser harness instead.'
  );
}

/** What to do about the Electron binary before starting: use it, fetch it, or explain why not. */
export type ElectronPlan =
  | { readonly kind: 'use'; readonly binary: string }
  | { readonly kind: 'install' }
  | { readonly kind: 'harness'; readonly line: string };

/**
 * Decides from what is installed and the environment; `ELECTRON_SKIP_BINARY_DOWNLOAD` means the person
 * asked for no download, so the harness opens and the line says that was the reason.
 */
export function planElectron(
  installedBinary: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): ElectronPlan {
  if (installedBinary) return { kind: 'use', binary: installedBinary };
  if (env.ELECTRON_SKIP_BINARY_DOWNLOAD && env.ELECTRON_SKIP_BINARY_DOWNLOAD !== '0') {
    return {
      kind: 'harness',
      line:
        'Electron is not downloaded because ELECTRON_SKIP_BINARY_DOWNLOAD is set; unset it to let npm start fetch it. ' +
        'Opening the browser harness instead.',
    };
  }
  return { kind: 'install' };
}
