import type { AppUpdater, ProgressInfo, UpdateInfo } from 'electron-updater';
import type { UpdateStatus } from '../../shared/update';
import { Emitter } from '../events';
import { IpcFailure } from '../ipc/dispatch';
import { compareVersions, type UpdateSettings } from './settings';

/** The part of electron-updater's `AppUpdater` the service drives (the platform's updater in Electron). */
export type Updater = Pick<
  AppUpdater,
  'autoDownload' | 'autoInstallOnAppQuit' | 'setFeedURL' | 'checkForUpdates' | 'downloadUpdate' | 'quitAndInstall'
> & {
  on(event: 'download-progress', listener: (info: ProgressInfo) => void): unknown;
};

/** What the service is built from. */
export interface UpdateServiceOptions {
  readonly settings: UpdateSettings;
  /** The platform's updater; absent where the app never updates (the browser harness). */
  readonly updater?: Updater;
  readonly currentVersion: string;
  readonly now: () => Date;
  readonly log: (message: string, error?: unknown) => void;
  /** How often to look again after the first check; default four hours. */
  readonly checkEveryMs?: number;
}

/**
 * The in-app updater under IT's policy: `notify` checks and lets the person choose, `auto` also
 * downloads and installs when the app quits, `off` never contacts the feed.
 *
 * electron-updater verifies each download against the sha512 in the feed's channel file and, on
 * Windows, the publisher's signature; a refused download is deleted, nothing is installed, and the
 * state says why in plain words. A minimum version from the gateway (discovery) triggers a check.
 */
export class UpdateService {
  private readonly changed = new Emitter<UpdateStatus>();
  /** Fires with the new state on every change. */
  readonly onDidChange = this.changed.event;
  private current: UpdateStatus;
  private timer: ReturnType<typeof setInterval> | undefined;
  private running: Promise<UpdateStatus> | undefined;
  private disposed = false;
  private started = false;

  constructor(private readonly options: UpdateServiceOptions) {
    const { settings } = options;
    this.current = settings.enabled
      ? {
          policy: settings.policy,
          state: 'idle',
          currentVersion: options.currentVersion,
          channel: settings.channel,
          feedUrl: withoutCredentials(settings.feedUrl),
          canUpdate: options.updater !== undefined,
        }
      : {
          policy: settings.policy,
          state: 'disabled',
          currentVersion: options.currentVersion,
          message: settings.reason,
          canUpdate: false,
        };
    if (settings.enabled && !options.updater) {
      this.current = { ...this.current, state: 'disabled', message: 'This shell has no updater.', canUpdate: false };
    }
  }

  /** The state now. */
  get status(): UpdateStatus {
    return this.current;
  }

  /** Points the updater at IT's feed and checks once now and then at intervals. */
  start(): Promise<UpdateStatus> {
    const { settings, updater } = this.options;
    if (!settings.enabled || !updater || this.started) return Promise.resolve(this.current);
    this.started = true;
    // The service decides when to download, so every download passes through one place.
    updater.autoDownload = false;
    updater.autoInstallOnAppQuit = true;
    updater.setFeedURL({ provider: 'generic', url: settings.feedUrl, channel: settings.channel });
    updater.on('download-progress', (progress) => {
      if (this.current.state === 'downloading') this.set({ percent: Math.floor(progress.percent) });
    });
    const every = this.options.checkEveryMs ?? 4 * 60 * 60 * 1000;
    this.timer = setInterval(() => void this.check(), every);
    this.timer.unref?.();
    return this.check();
  }

  /**
   * Records the oldest version the gateway accepts; when this app is older, the page explains and offers the update.
   */
  requireVersion(minimum: string | undefined): void {
    const older = minimum !== undefined && (compareVersions(this.options.currentVersion, minimum) ?? 0) < 0;
    const required = older ? minimum : undefined;
    if (required === this.current.requiredVersion) return;
    this.set({ requiredVersion: required });
    if (required === undefined) return;
    this.options.log(
      `The gateway requires Clearance ${required} or later; this is ${this.options.currentVersion}${
        this.current.canUpdate ? '' : ' and it does not update itself'
      }`,
    );
    if (this.current.canUpdate && ['idle', 'up-to-date', 'error'].includes(this.current.state)) void this.check();
  }

  /** Asks the feed for a newer version; in `auto` (or when the gateway requires one) downloads it. */
  check(): Promise<UpdateStatus> {
    const { settings, updater } = this.options;
    if (!settings.enabled || !updater || this.disposed || !this.started) return Promise.resolve(this.current);
    if (this.running) return this.running;
    if (['downloading', 'ready', 'disabled'].includes(this.current.state)) return Promise.resolve(this.current);
    this.running = this.runCheck(updater, settings.policy).finally(() => (this.running = undefined));
    return this.running;
  }

  /** Downloads the update found, or quits and installs the one downloaded. */
  async install(): Promise<UpdateStatus> {
    const { updater } = this.options;
    if (!updater || !this.current.canUpdate) {
      throw new IpcFailure('BAD_REQUEST', this.current.message ?? 'Clearance does not update itself here.');
    }
    if (this.current.state === 'ready') {
      this.options.log(`Restarting to install Clearance ${this.current.availableVersion ?? ''}`);
      updater.quitAndInstall(false, true);
      return this.current;
    }
    if (this.current.state === 'available') return this.download(updater);
    if (this.current.state === 'downloading') return this.current;
    throw new IpcFailure('BAD_REQUEST', 'There is no update to install. Check for updates first.');
  }

  /** Stops the periodic checks. */
  dispose(): void {
    this.disposed = true;
    if (this.timer) clearInterval(this.timer);
    this.changed.dispose();
  }

  private async runCheck(updater: Updater, policy: 'notify' | 'auto'): Promise<UpdateStatus> {
    this.set({ state: 'checking', message: undefined });
    let info: UpdateInfo | undefined;
    let available: boolean;
    try {
      const result = await updater.checkForUpdates();
      if (result === null) {
        // electron-updater is inactive for this kind of installation (e.g. Linux outside an AppImage, deb or rpm).
        this.options.log('Update check: this installation cannot update itself');
        return this.set({
          state: 'disabled',
          canUpdate: false,
          message: 'This kind of installation does not update itself; IT deploys new versions.',
        });
      }
      info = result.updateInfo;
      available = result.isUpdateAvailable;
    } catch (error) {
      return this.fail(this.describeCheckError(error), error);
    }
    const checkedAt = this.options.now().toISOString();
    if (!info || !available) {
      this.options.log(
        `Update check: ${this.options.currentVersion} is current (feed has ${info?.version ?? 'nothing'})`,
      );
      return this.set({ state: 'up-to-date', checkedAt, availableVersion: undefined });
    }
    this.options.log(`Update check: version ${info.version} is available (this is ${this.options.currentVersion})`);
    this.set({ state: 'available', checkedAt, availableVersion: info.version });
    if (policy === 'auto') return this.download(updater);
    return this.current;
  }

  private async download(updater: Updater): Promise<UpdateStatus> {
    const version = this.current.availableVersion ?? 'the new version';
    this.set({ state: 'downloading', percent: 0, message: undefined });
    try {
      await updater.downloadUpdate();
    } catch (error) {
      return this.fail(this.describeDownloadError(version, error), error);
    }
    this.options.log(`Clearance ${version} is downloaded and verified; it installs when the app restarts`);
    return this.set({ state: 'ready', percent: 100 });
  }

  private fail(message: string, error: unknown): UpdateStatus {
    this.options.log(message, error);
    return this.set({ state: 'error', message, percent: undefined });
  }

  private describeCheckError(error: unknown): string {
    const feed = this.current.feedUrl ?? 'the update feed';
    const code = errorCode(error);
    if (code === 'ERR_UPDATER_CHANNEL_FILE_NOT_FOUND') {
      return `The update feed at ${feed} has no ${this.current.channel ?? 'latest'} release for this system. Tell IT.`;
    }
    if (code === 'ERR_UPDATER_INVALID_UPDATE_INFO' || code === 'ERR_UPDATER_INVALID_VERSION') {
      return `The update feed at ${feed} answered with release information Clearance cannot read. Tell IT.`;
    }
    return `Clearance could not check for updates at ${feed} (${shortReason(error)}). It will try again later.`;
  }

  private describeDownloadError(version: string, error: unknown): string {
    const code = errorCode(error);
    if (code === 'ERR_CHECKSUM_MISMATCH') {
      return `The download of Clearance ${version} did not match the checksum its update feed publishes, so it was deleted and nothing was installed. Tell IT.`;
    }
    if (code === 'ERR_UPDATER_INVALID_SIGNATURE') {
      return `The download of Clearance ${version} is not signed by Clearance's publisher, so it was deleted and nothing was installed. Tell IT.`;
    }
    return `Clearance ${version} could not be downloaded (${shortReason(error)}). Nothing was installed; it will try again later.`;
  }

  private set(patch: Partial<UpdateStatus>): UpdateStatus {
    const next: Record<string, unknown> = { ...this.current, ...patch };
    for (const key of Object.keys(next)) if (next[key] === undefined) delete next[key];
    this.current = next as UpdateStatus;
    this.changed.fire(this.current);
    return this.current;
  }
}

/** A URL as the page and the log may show it: without a user name or password. */
function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return url;
  }
}

function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string'
    ? error.code
    : undefined;
}

/** The first line of an error, without electron-updater's stack, bounded. */
function shortReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const first = message.split('\n')[0] ?? message;
  return first.length > 200 ? `${first.slice(0, 200)}…` : first;
}
