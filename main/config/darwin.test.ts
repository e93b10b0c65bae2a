import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseManagedPreferences, PLUTIL, readDarwinPolicy } from './darwin';
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
