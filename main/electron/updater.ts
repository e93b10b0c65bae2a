import { autoUpdater } from 'electron-updater';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { namesPublisher } from '../update/settings';
import type { Updater } from '../update/UpdateService';

/** A logger as electron-updater takes it. */
interface UpdaterLog {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/**
 * The platform's electron-updater (NSIS on Windows, Squirrel.Mac, AppImage/deb/rpm on Linux) for the
 * composition root, with whether the packaged `app-update.yml` names the publisher updates must be
 * signed by (Windows; electron-updater skips the check without one, so the app then does not update).
 *
 * Built only in a packaged app: electron-updater reads `app-update.yml` from the resources folder.
 */
export function createPlatformUpdater(
  packaged: boolean,
  log: UpdaterLog,
): { readonly updater: Updater; readonly publisherConfigured: boolean } | undefined {
  if (!packaged) return undefined;
  let publisherConfigured: boolean;
  try {
    publisherConfigured = namesPublisher(readFileSync(join(process.resourcesPath, 'app-update.yml'), 'utf8'));
  } catch {
    publisherConfigured = false;
  }
  autoUpdater.logger = log;
  return { updater: autoUpdater, publisherConfigured };
}
