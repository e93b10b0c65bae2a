import type { ClearanceApi } from '../shared/ipc';

/**
 * Thrown when the page runs without the desktop bridge (`window.clearance`).
 *
 * Happens when the built page is opened directly in a browser instead of through the Electron
 * shell or the browser harness; the entry point shows a screen that says so.
 */
export class PlatformUnavailableError extends Error {
  override readonly name = 'PlatformUnavailableError';
}

const requiredMembers = ['getAppInfo', 'getSessionState', 'signIn', 'on'] as const;

/**
 * The desktop API, the only way this page reaches the rest of Clearance.
 *
 * The Electron preload and the browser harness both define `window.clearance` before the page
 * loads. Nothing else in the renderer reads `window.clearance`: the entry point calls this once
 * and hands the result down.
 */
export function clearance(): ClearanceApi {
  const candidate = (window as { readonly clearance?: unknown }).clearance;
  if (typeof candidate !== 'object' || candidate === null) {
    throw new PlatformUnavailableError(
      'Clearance could not connect to its desktop services. Open it from the Clearance app rather than a web browser.',
    );
  }
  const missing = requiredMembers.filter(
    (member) => typeof (candidate as Record<string, unknown>)[member] !== 'function',
  );
  if (missing.length > 0) {
    throw new PlatformUnavailableError(
      `Clearance's desktop services are incomplete (missing ${missing.join(', ')}). Reinstall or update Clearance.`,
    );
  }
  return candidate as ClearanceApi;
}
