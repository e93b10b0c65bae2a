import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readManagedPolicy, resolveStartupSettings } from './managed';
import { evaluatePolicy, UNMANAGED } from './policy';
import { recordedRunner } from './testing/recorded';

const ownership = { trustedUid: process.getuid?.() ?? 0 };
const temps: string[] = [];
afterEach(async () => {
  await Promise.all(temps.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function linuxPolicy(json: unknown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'clearance-etc-'));
  temps.push(dir);
  await chmod(dir, 0o755);
  await writeFile(join(dir, 'policy.json'), JSON.stringify(json), { mode: 0o644 });
  return dir;
}

/** An environment that fails the test if anything reads it. */
const untouchableEnv = new Proxy<Record<string, string | undefined>>(
  {},
  {
    get(_target, name) {
      throw new Error(`The environment was read: ${String(name)}`);
    },
    has(_target, name) {
      throw new Error(`The environment was read: ${String(name)}`);
    },
    ownKeys() {
      throw new Error('The environment was enumerated');
    },
  },
);

describe('readManagedPolicy', () => {
  it('reads the platform’s own store: Linux files from the injected folder', async () => {
    const linuxDir = await linuxPolicy({ gatewayUrl: 'https://gw.lab.example' });
    const policy = await readManagedPolicy({ platform: 'linux', commands: recordedRunner({}), linuxDir, ownership });
    expect(policy.config).toEqual({ gatewayUrl: 'https://gw.lab.example' });
    expect(policy.view.entries[0]).toMatchObject({ source: 'file', location: join(linuxDir, 'policy.json') });
  });

  it('reads Windows policy through reg.exe and macOS through its managed preferences folder', async () => {
    const windows = recordedRunner({});
    await readManagedPolicy({ platform: 'win32', commands: windows });
    expect(windows.calls[0]).toMatch(/reg\.exe query HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies$/);

    const darwinDir = await mkdtemp(join(tmpdir(), 'clearance-prefs-'));
    temps.push(darwinDir);
    const mac = await readManagedPolicy({ platform: 'darwin', commands: recordedRunner({}), darwinDir, ownership });
    expect(mac).toEqual(UNMANAGED);
  });

  it('fails closed when a reader breaks (Windows without reg.exe)', async () => {
    const policy = await readManagedPolicy({ platform: 'win32', commands: recordedRunner({}) });
    expect(policy.view.state).toBe('invalid');
  });
});

describe('resolveStartupSettings', () => {
  const managed = evaluatePolicy({
    values: [{ key: 'gatewayUrl', value: 'https://gw.lab.example', source: 'file', level: 'machine', location: 'f' }],
    problems: [],
    present: true,
  });

  it('never reads the environment in a packaged app', () => {
    expect(resolveStartupSettings(managed, true, untouchableEnv)).toEqual({ gatewayUrl: 'https://gw.lab.example' });
    expect(resolveStartupSettings(UNMANAGED, true, untouchableEnv)).toEqual({});
  });

  it('lets a development build fall back to CLEARANCE_GATEWAY_URL and its CA file, policy first', () => {
    const env = { CLEARANCE_GATEWAY_URL: 'http://127.0.0.1:1234', CLEARANCE_DEV_CA_FILE: '/tmp/ca.pem' };
    expect(resolveStartupSettings(UNMANAGED, false, env)).toEqual({
      gatewayUrl: 'http://127.0.0.1:1234',
      developmentCaFile: '/tmp/ca.pem',
    });
    expect(resolveStartupSettings(managed, false, env).gatewayUrl).toBe('https://gw.lab.example');
  });

  it('gives no gateway from a policy that is invalid', () => {
    const invalid = evaluatePolicy({
      values: [
        { key: 'gatewayUrl', value: 'https://gw.lab.example', source: 'file', level: 'machine', location: 'f' },
        { key: 'spellCheck', value: 'yes', source: 'file', level: 'machine', location: 'f' },
      ],
      problems: [],
      present: true,
    });
    expect(resolveStartupSettings(invalid, true, untouchableEnv)).toEqual({});
  });
});

describe('readManagedPolicy: each platform’s reader, failing closed', () => {
  it('reads macOS managed preferences on macOS', async () => {
    const darwinDir = await mkdtemp(join(tmpdir(), 'clearance-prefs-'));
    temps.push(darwinDir);
    await writeFile(
      join(darwinDir, 'com.lab.clearance.plist'),
      '<plist version="1.0"><dict><key>theme</key><string>dark</string></dict></plist>',
      { mode: 0o644 },
    );
    const policy = await readManagedPolicy({ platform: 'darwin', commands: recordedRunner({}), darwinDir, ownership });
    expect(policy.config).toEqual({ theme: 'dark' });
    expect(policy.view.entries[0]).toMatchObject({ source: 'profile', level: 'machine' });
  });

  it('makes the policy invalid, naming the failure, when a reader throws', async () => {
    const commands = {
      run: () => Promise.reject(new Error('reg.exe crashed')),
    };
    const policy = await readManagedPolicy({ platform: 'win32', commands });
    expect(policy.view.state).toBe('invalid');
    expect(policy.present).toBe(true);
    expect(policy.view.problems).toEqual([
      { location: 'managed configuration', message: 'Managed configuration could not be read: reg.exe crashed' },
    ]);
  });
});
