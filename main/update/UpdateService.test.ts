import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { UpdateStatus } from '../../shared/update';
import { resolveUpdateSettings } from './settings';
import { channelFile, createTestUpdater, startUpdateFeed, type UpdateFeed } from './testing/updateFeed';
import { UpdateService } from './UpdateService';

const INSTALLER = 'Clearance-Setup-0.2.0.exe';
const GOOD = Buffer.from('MZ the 0.2.0 installer, signed by Clearance authors');

let dir: string;
let feed: UpdateFeed;
const logged: string[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clearance-update-'));
  feed = await startUpdateFeed({ 'latest.yml': channelFile('0.2.0', INSTALLER, GOOD), [INSTALLER]: GOOD });
  logged.length = 0;
});

afterEach(async () => {
  await feed.close();
  await rm(dir, { recursive: true, force: true });
});

/** The settings an installed app gets from IT's managed keys. */
function settings(updatePolicy: 'off' | 'notify' | 'auto', updateChannel: 'stable' | 'beta' = 'stable') {
  return resolveUpdateSettings({
    shell: 'electron',
    packaged: true,
    platform: 'win32',
    managed: { updatePolicy, updateUrl: feed.url, updateChannel },
    publisherConfigured: true,
  });
}

/** A signature check that accepts only files that say they were signed by one of the publishers. */
const authenticode = vi.fn(async (publishers: string[], file: string) => {
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(file, 'utf8');
  return publishers.some((p) => text.includes(`signed by ${p}`))
    ? null
    : 'The signer of the file is CN=Mallory, not one of the expected publishers';
});

async function service(policy: 'off' | 'notify' | 'auto', version = '0.1.0', channel: 'stable' | 'beta' = 'stable') {
  const test = await createTestUpdater(dir, version, {
    publisherNames: ['Clearance authors'],
    verifySignature: authenticode,
  });
  const update = new UpdateService({
    settings: settings(policy, channel),
    updater: test.updater,
    currentVersion: version,
    now: () => new Date('2026-11-28T12:00:00Z'),
    log: (message) => logged.push(message),
  });
  const seen: UpdateStatus[] = [];
  update.onDidChange((status) => seen.push(status));
  return { update, seen, ...test };
}

/** Every file under the updater's cache, so a test can see that nothing was left to install. */
async function cached(cacheDir: string): Promise<string[]> {
  try {
    return (await readdir(cacheDir, { recursive: true })).map(String).filter((f) => f.endsWith('.exe'));
  } catch {
    return [];
  }
}

describe('UpdateService against a local generic update feed', () => {
  it('off: never contacts the feed, and says IT deploys updates', async () => {
    const { update } = await service('off');
    expect(await update.start()).toMatchObject({ state: 'disabled', canUpdate: false, policy: 'off' });
    expect(await update.check()).toMatchObject({ state: 'disabled' });
    await expect(update.install()).rejects.toMatchObject({ error: { code: 'BAD_REQUEST' } });
    expect(update.status.message).toMatch(/updatePolicy is off/);
    expect(feed.requests).toEqual([]);
    update.dispose();
  });

  it('notify: checks latest.yml, reports the new version and downloads nothing', async () => {
    const { update, seen, cacheDir, app } = await service('notify');
    const status = await update.start();
    expect(status).toMatchObject({
      state: 'available',
      availableVersion: '0.2.0',
      currentVersion: '0.1.0',
      channel: 'latest',
      checkedAt: '2026-11-28T12:00:00.000Z',
      canUpdate: true,
    });
    expect(seen.map((s) => s.state)).toEqual(['checking', 'available']);
    expect(feed.requests).toEqual(['latest.yml']);
    expect(await cached(cacheDir)).toEqual([]);
    expect(app.quitHandlers).toHaveLength(0);
    update.dispose();
  });

  it('notify: up to date when the feed has this version', async () => {
    const { update } = await service('notify', '0.2.0');
    expect(await update.start()).toMatchObject({ state: 'up-to-date', currentVersion: '0.2.0' });
    expect(update.status.availableVersion).toBeUndefined();
    update.dispose();
  });

  it('notify: the person starts the download, it is verified, and it installs on restart', async () => {
    const { update, updater, cacheDir, app } = await service('notify');
    await update.start();
    expect(await update.install()).toMatchObject({ state: 'ready', availableVersion: '0.2.0', percent: 100 });
    expect(authenticode).toHaveBeenLastCalledWith(['Clearance authors'], expect.stringContaining(cacheDir));
    expect(await cached(cacheDir)).toEqual([join('pending', INSTALLER)]);
    const quitAndInstall = vi.spyOn(updater, 'quitAndInstall').mockImplementation(() => {});
    await update.install();
    expect(quitAndInstall).toHaveBeenCalledOnce();
    expect(app.quitHandlers).toHaveLength(1);
    update.dispose();
  });

  it('auto: downloads and verifies the update by itself, to install when the app quits', async () => {
    const { update, seen, cacheDir, app } = await service('auto');
    expect(await update.start()).toMatchObject({ state: 'ready', availableVersion: '0.2.0' });
    expect(seen.map((s) => s.state)).toContain('downloading');
    expect(feed.requests).toEqual(['latest.yml', INSTALLER]);
    expect(await cached(cacheDir)).toEqual([join('pending', INSTALLER)]);
    expect(app.quitHandlers).toHaveLength(1);
    update.dispose();
  });

  it('refuses a download whose checksum does not match latest.yml: deleted, nothing installed, a clear message', async () => {
    feed.put(INSTALLER, Buffer.from('MZ a tampered installer, signed by Clearance authors'));
    const { update, cacheDir, app } = await service('auto');
    const status = await update.start();
    expect(status.state).toBe('error');
    expect(status.message).toBe(
      'The download of Clearance 0.2.0 did not match the checksum its update feed publishes, so it was deleted and nothing was installed. Tell IT.',
    );
    expect(await cached(cacheDir)).toEqual([]);
    expect(app.quitHandlers).toHaveLength(0);
    expect(app.quitCalls).toBe(0);
    await expect(update.install()).rejects.toMatchObject({ error: { code: 'BAD_REQUEST' } });
    expect(logged.some((line) => line.includes('did not match the checksum'))).toBe(true);
    update.dispose();
  });

  it('refuses a download not signed by the publisher: deleted, nothing installed, a clear message', async () => {
    const unsigned = Buffer.from('MZ an installer signed by Mallory');
    feed.put('latest.yml', channelFile('0.2.0', INSTALLER, unsigned));
    feed.put(INSTALLER, unsigned);
    const { update, cacheDir, app } = await service('auto');
    const status = await update.start();
    expect(status).toMatchObject({
      state: 'error',
      message:
        "The download of Clearance 0.2.0 is not signed by Clearance's publisher, so it was deleted and nothing was installed. Tell IT.",
    });
    expect(authenticode).toHaveBeenLastCalledWith(['Clearance authors'], expect.any(String));
    expect(await cached(cacheDir)).toEqual([]);
    expect(app.quitHandlers).toHaveLength(0);
    update.dispose();
  });

  it('says so, and never claims to be up to date, when electron-updater cannot update this installation', async () => {
    const test = await createTestUpdater(dir, '0.1.0', { packaged: false });
    const update = new UpdateService({
      settings: settings('auto'),
      updater: test.updater,
      currentVersion: '0.1.0',
      now: () => new Date(),
      log: () => {},
    });
    expect(await update.start()).toMatchObject({
      state: 'disabled',
      canUpdate: false,
      message: 'This kind of installation does not update itself; IT deploys new versions.',
    });
    expect(feed.requests).toEqual([]);
    update.dispose();
  });

  it('never shows the feed’s user name or password', async () => {
    const test = await createTestUpdater(dir, '0.1.0', { publisherNames: ['Clearance authors'] });
    const withCredentials = feed.url.replace('http://', 'http://feed-user:PlantedFeedPassword77@');
    const update = new UpdateService({
      settings: { enabled: true, policy: 'notify', feedUrl: withCredentials, channel: 'latest' },
      updater: test.updater,
      currentVersion: '0.1.0',
      now: () => new Date(),
      log: (message) => logged.push(message),
    });
    feed.put('latest.yml', 'not: [a channel file');
    const status = await update.start();
    expect(status.state).toBe('error');
    expect(status.feedUrl).toBe(feed.url);
    expect(JSON.stringify(status) + logged.join('\n')).not.toContain('PlantedFeedPassword77');
    update.dispose();
  });

  it('says so when the feed has no file for its channel', async () => {
    const { update } = await service('notify', '0.1.0', 'beta');
    const status = await update.start();
    expect(feed.requests).toEqual(['beta.yml']);
    expect(status.state).toBe('error');
    expect(status.message).toBe(`The update feed at ${feed.url} has no beta release for this system. Tell IT.`);
    update.dispose();
  });

  it('says so when the feed is unreachable, and keeps nothing', async () => {
    await feed.close();
    const { update, cacheDir } = await service('auto');
    const status = await update.start();
    expect(status.state).toBe('error');
    expect(status.message).toMatch(
      /^Clearance could not check for updates at http:\/\/127\.0\.0\.1:\d+\/feed\/ \(.+\)\. It will try again later\.$/,
    );
    expect(await cached(cacheDir)).toEqual([]);
    feed = await startUpdateFeed();
    update.dispose();
  }, 20_000);

  it('a minimum version from the gateway above this one is recorded and triggers a check', async () => {
    feed.put('latest.yml', channelFile('0.1.0', INSTALLER, GOOD));
    const { update } = await service('notify');
    expect(await update.start()).toMatchObject({ state: 'up-to-date' });
    feed.put('latest.yml', channelFile('0.2.0', INSTALLER, GOOD));
    feed.requests.length = 0;
    update.requireVersion('0.2.0');
    expect(update.status.requiredVersion).toBe('0.2.0');
    await vi.waitFor(() => expect(update.status).toMatchObject({ state: 'available', availableVersion: '0.2.0' }));
    expect(feed.requests).toEqual(['latest.yml']);
    update.requireVersion('0.1.0');
    expect(update.status.requiredVersion).toBeUndefined();
    update.dispose();
  });

  it('a required version with updates off is recorded but the feed is never contacted', async () => {
    const { update } = await service('off');
    await update.start();
    update.requireVersion('1.0.0');
    expect(update.status).toMatchObject({ state: 'disabled', requiredVersion: '1.0.0', canUpdate: false });
    expect(feed.requests).toEqual([]);
    update.dispose();
  });
});
