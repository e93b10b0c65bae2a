import { describe, expect, it } from 'vitest';
import { compareVersions, namesPublisher, resolveUpdateSettings, type UpdateSettingsInput } from './settings';

const installed: UpdateSettingsInput = {
  shell: 'electron',
  packaged: true,
  platform: 'linux',
  managed: { updatePolicy: 'notify', updateUrl: 'https://updates.lab.example/clearance/' },
  publisherConfigured: false,
};

describe('resolveUpdateSettings', () => {
  it('runs notify and auto against IT’s feed, stable reading latest.yml and beta beta.yml', () => {
    expect(resolveUpdateSettings(installed)).toEqual({
      enabled: true,
      policy: 'notify',
      feedUrl: 'https://updates.lab.example/clearance/',
      channel: 'latest',
    });
    expect(
      resolveUpdateSettings({
        ...installed,
        managed: { ...installed.managed, updatePolicy: 'auto', updateChannel: 'beta' },
      }),
    ).toMatchObject({ enabled: true, policy: 'auto', channel: 'beta' });
  });

  it('is off when IT sets no policy or off', () => {
    expect(resolveUpdateSettings({ ...installed, managed: { updateUrl: 'https://u.example/' } })).toMatchObject({
      enabled: false,
      policy: 'off',
    });
    expect(
      resolveUpdateSettings({ ...installed, managed: { ...installed.managed, updatePolicy: 'off' } }),
    ).toMatchObject({ enabled: false, reason: expect.stringMatching(/updatePolicy is off/) });
  });

  it('never runs in the browser harness or a development build, whatever the policy', () => {
    expect(resolveUpdateSettings({ ...installed, shell: 'harness' })).toMatchObject({
      enabled: false,
      reason: 'The browser harness never updates itself.',
    });
    expect(resolveUpdateSettings({ ...installed, packaged: false })).toMatchObject({ enabled: false });
  });

  it('is off without a feed, naming the setting', () => {
    expect(resolveUpdateSettings({ ...installed, managed: { updatePolicy: 'auto' } })).toMatchObject({
      enabled: false,
      policy: 'auto',
      reason: expect.stringContaining('updateUrl'),
    });
  });

  it('on Windows, is off unless the installation names the publisher updates must be signed by', () => {
    expect(resolveUpdateSettings({ ...installed, platform: 'win32' })).toMatchObject({ enabled: false });
    expect(resolveUpdateSettings({ ...installed, platform: 'win32', publisherConfigured: true })).toMatchObject({
      enabled: true,
    });
  });
});

describe('namesPublisher', () => {
  it('finds publisherName as a list or a value, and nothing else', () => {
    expect(namesPublisher('provider: generic\npublisherName:\n  - Clearance authors\n')).toBe(true);
    expect(namesPublisher('publisherName: Clearance authors\n')).toBe(true);
    expect(namesPublisher('provider: generic\nurl: https://u.example\n')).toBe(false);
    expect(namesPublisher('publisherName:\nprovider: generic\n')).toBe(false);
    expect(namesPublisher('# publisherName: x\n')).toBe(false);
  });
});

describe('compareVersions', () => {
  it('orders releases and pre-releases as semver does', () => {
    expect(compareVersions('0.1.0', '0.2.0')).toBe(-1);
    expect(compareVersions('1.10.0', '1.9.9')).toBe(1);
    expect(compareVersions('1.2.0', '1.2.0')).toBe(0);
    expect(compareVersions('1.2.0-beta.1', '1.2.0')).toBe(-1);
    expect(compareVersions('1.2.0-beta.2', '1.2.0-beta.10')).toBe(-1);
    expect(compareVersions('1.2.0-alpha', '1.2.0-beta')).toBe(-1);
    expect(compareVersions('1.2.0-beta', '1.2.0-beta.1')).toBe(-1);
  });

  it('answers undefined for anything that is not a version', () => {
    expect(compareVersions('1.2', '1.2.0')).toBeUndefined();
    expect(compareVersions('1.2.0', 'latest')).toBeUndefined();
  });
});
