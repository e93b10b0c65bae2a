import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { CommandRunner } from '../platform';
import { MANAGED_PREFERENCES_DIR, parseManagedPreferences, PLUTIL, readDarwinPolicy } from './darwin';
import { evaluatePolicy } from './policy';
import { makeUserOwned, recorded, recordedRunner, result } from './testing/recorded';

const fixture = (name: string) => new URL(`./fixtures/darwin/${name}`, import.meta.url);
const ownership = { trustedUid: process.getuid?.() ?? 0 };
const temps: string[] = [];
afterEach(async () => {
  await Promise.all(temps.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A Managed Preferences folder holding the given machine and per-user (`alice`) files. */
async function managedPreferences(machine?: string, user?: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'clearance-managed-prefs-'));
  temps.push(dir);
  if (machine) await copyFile(fixture(machine), join(dir, 'com.lab.clearance.plist'));
  if (user) {
    await mkdir(join(dir, 'alice'));
    await copyFile(fixture(user), join(dir, 'alice', 'com.lab.clearance.plist'));
  }
  return dir;
}

describe('readDarwinPolicy', () => {
  it('reads the machine profile (XML) and the user profile (binary, through plutil), machine first', async () => {
    const dir = await managedPreferences('com.lab.clearance.xml.plist', 'com.lab.clearance.user-binary.plist');
    const userFile = join(dir, 'alice', 'com.lab.clearance.plist');
    const runner = recordedRunner({
      [`${PLUTIL} -convert xml1 -o - -- ${userFile}`]: result(recorded('darwin/plutil-user-binary.stdout.txt')),
    });
    const policy = evaluatePolicy(await readDarwinPolicy({ dir, userName: 'alice', commands: runner, ownership }));
    expect(runner.calls).toEqual([`${PLUTIL} -convert xml1 -o - -- ${userFile}`]);
    expect(policy.view.state).toBe('managed');
    expect(policy.config).toEqual({
      gatewayUrl: 'https://clearance-gateway.lab.example',
      externalHosts: ['help.lab.example'],
      spellCheck: false,
      locks: ['spellCheck'],
      updatePolicy: 'auto',
      updateChannel: 'beta',
      theme: 'dark',
      supportContact: 'Mac support, ext. 4242',
    });
    expect(policy.view.entries.find((e) => e.key === 'updateUrl')).toMatchObject({
      level: 'user',
      source: 'profile',
      status: 'rejected',
    });
    expect(policy.view.entries.find((e) => e.key === 'gatewayUrl')?.location).toBe(
      join(dir, 'com.lab.clearance.plist'),
    );
  });

  it('stops on wrong types and names each key; an unknown key is only reported', async () => {
    const dir = await managedPreferences('com.lab.clearance.wrong-types.plist');
    const policy = evaluatePolicy(await readDarwinPolicy({ dir, commands: recordedRunner({}), ownership }));
    expect(policy.view.state).toBe('invalid');
    expect(policy.view.problems.map((p) => p.key).sort()).toEqual(['externalHosts', 'gatewayUrl', 'spellCheck']);
    expect(policy.view.problems.find((p) => p.key === 'spellCheck')?.message).toMatch(/expected boolean/);
    expect(policy.view.entries.find((e) => e.key === 'unknownKey')?.status).toBe('unknown');
  });

  it('fails closed when a binary profile cannot be converted', async () => {
    const dir = await managedPreferences('com.lab.clearance.user-binary.plist');
    const policy = evaluatePolicy(await readDarwinPolicy({ dir, commands: recordedRunner({}), ownership }));
    expect(policy.view.state).toBe('invalid');
    expect(policy.view.problems[0]?.message).toMatch(/binary property list that plutil could not convert/);
  });

  it('refuses a preferences file a user owns', async () => {
    const dir = await managedPreferences('com.lab.clearance.xml.plist');
    const uid = await makeUserOwned(join(dir, 'com.lab.clearance.plist'));
    const policy = evaluatePolicy(
      await readDarwinPolicy({ dir, commands: recordedRunner({}), ownership: { trustedUid: 0 } }),
    );
    expect(policy.view.state).toBe('invalid');
    expect(policy.config).toEqual({});
    expect(policy.view.problems[0]?.message).toMatch(new RegExp(`owned by user ${uid}, not root`));
  });

  it('is unmanaged when no profile delivered the domain', async () => {
    const dir = await managedPreferences();
    expect(await readDarwinPolicy({ dir, userName: 'alice', commands: recordedRunner({}), ownership })).toEqual({
      values: [],
      problems: [],
      present: false,
    });
  });

  it('rejects a property list that is not a dictionary, or not a property list', () => {
    expect(parseManagedPreferences('<plist><array/></plist>', 'machine', 'x').problem?.message).toMatch(/dictionary/);
    expect(parseManagedPreferences('{"gatewayUrl":1}', 'machine', 'x').problem?.message).toMatch(
      /not a valid property list/,
    );
  });
});

describe('readDarwinPolicy: fail closed, and read only the signed-in user’s own folder', () => {
  it('runs plutil by absolute path from the folder profiles deliver to', () => {
    expect(PLUTIL).toBe('/usr/bin/plutil');
    expect(MANAGED_PREFERENCES_DIR).toBe('/Library/Managed Preferences');
  });

  it('never reads a user profile outside the user’s own folder', async () => {
    const dir = await managedPreferences('com.lab.clearance.xml.plist');
    await mkdir(join(dir, '.alice'));
    await copyFile(fixture('com.lab.clearance.xml.plist'), join(dir, '.alice', 'com.lab.clearance.plist'));
    for (const userName of ['.alice', 'alice/..', '../alice', 'x\\..']) {
      const read = await readDarwinPolicy({ dir, userName, commands: recordedRunner({}), ownership });
      expect(read.problems, userName).toEqual([]);
      expect(
        read.values.every((v) => v.level === 'machine'),
        userName,
      ).toBe(true);
    }
  });

  it('counts a refused or empty profile as a policy store', async () => {
    const dir = await managedPreferences('com.lab.clearance.xml.plist');
    await makeUserOwned(join(dir, 'com.lab.clearance.plist'));
    expect((await readDarwinPolicy({ dir, commands: recordedRunner({}), ownership: { trustedUid: 0 } })).present).toBe(
      true,
    );

    const empty = await managedPreferences();
    await writeFile(join(empty, 'com.lab.clearance.plist'), '<plist version="1.0"><dict/></plist>', { mode: 0o644 });
    expect(await readDarwinPolicy({ dir: empty, commands: recordedRunner({}), ownership })).toEqual({
      values: [],
      problems: [],
      present: true,
    });
  });

  it('fails closed on a profile that cannot be read (a folder in its place)', async () => {
    const dir = await managedPreferences();
    await mkdir(join(dir, 'com.lab.clearance.plist'));
    const location = join(dir, 'com.lab.clearance.plist');
    const read = await readDarwinPolicy({ dir, commands: recordedRunner({}), ownership });
    expect(read.present).toBe(true);
    expect(read.problems).toEqual([
      { location, message: expect.stringMatching(new RegExp(`^${location} cannot be read: .*EISDIR`)) },
    ]);
  });

  it('gives plutil a timeout, and fails closed with its own words when it fails or reports an error', async () => {
    const dir = await managedPreferences('com.lab.clearance.user-binary.plist');
    const location = join(dir, 'com.lab.clearance.plist');
    const line = `${PLUTIL} -convert xml1 -o - -- ${location}`;
    const converted = recorded('darwin/plutil-user-binary.stdout.txt');
    for (const [answer, message] of [
      [result('', 1, '  bad file\n'), 'bad file'],
      [{ ...result(converted), error: 'plutil timed out' }, 'plutil timed out'],
    ] as const) {
      const timeouts: Array<number | undefined> = [];
      const commands: CommandRunner = {
        async run(command, args, options) {
          timeouts.push(options?.timeoutMs);
          return [command, ...args].join(' ') === line ? answer : result('', 1);
        },
      };
      const read = await readDarwinPolicy({ dir, commands, ownership });
      expect(timeouts).toEqual([10_000]);
      expect(read.values).toEqual([]);
      expect(read.problems).toEqual([
        { location, message: `${location} is a binary property list that plutil could not convert: ${message}` },
      ]);
    }
  });
});
