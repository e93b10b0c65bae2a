import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readLinuxPolicy } from './linux';
import { evaluatePolicy } from './policy';
import { makeUserOwned } from './testing/recorded';

const ownership = { trustedUid: process.getuid?.() ?? 0 };
const temps: string[] = [];
afterEach(async () => {
  await Promise.all(temps.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** An `/etc/clearance` stand-in with the given files (paths relative to it). */
async function policyDir(files: Readonly<Record<string, string>>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'clearance-etc-'));
  temps.push(dir);
  await chmod(dir, 0o755);
  for (const [name, text] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), text, { mode: 0o644 });
  }
  return dir;
}

describe('readLinuxPolicy', () => {
  it('reads policy.json, then policy.d/*.json in name order, a later file overriding a key', async () => {
    const dir = await policyDir({
      'policy.json': JSON.stringify({ gatewayUrl: 'https://gw.lab.example', theme: 'light' }),
      'policy.d/20-theme.json': JSON.stringify({ theme: 'dark' }),
      'policy.d/10-hosts.json': '\uFEFF{ "externalHosts": ["help.lab.example"], "locks": ["theme"] }\r\n',
      'policy.d/README': 'not json, not read',
    });
    const read = await readLinuxPolicy({ dir, ownership });
    expect(read.trustedFilePresent).toBe(true);
    const policy = evaluatePolicy(read);
    expect(policy.view.state).toBe('managed');
    expect(policy.config).toEqual({
      gatewayUrl: 'https://gw.lab.example',
      theme: 'dark',
      externalHosts: ['help.lab.example'],
      locks: ['theme'],
    });
    expect(policy.view.entries.find((e) => e.key === 'theme' && e.status === 'overridden')?.reason).toBe(
      `Replaced by ${join(dir, 'policy.d', '20-theme.json')}.`,
    );
    expect(policy.trustedFilePresent).toBe(true);
  });

  it('refuses a policy file not owned by root, and never reads it', async () => {
    const dir = await policyDir({ 'policy.json': JSON.stringify({ gatewayUrl: 'https://attacker.example' }) });
    const uid = await makeUserOwned(join(dir, 'policy.json'));
    const policy = evaluatePolicy(await readLinuxPolicy({ dir, ownership: { trustedUid: 0 } }));
    expect(uid).not.toBe(0);
    expect(policy.view.state).toBe('invalid');
    expect(policy.config).toEqual({});
    expect(policy.view.entries).toEqual([]);
    expect(policy.view.problems[0]?.message).toMatch(new RegExp(`owned by user ${uid}, not root`));
    expect(policy.trustedFilePresent).toBe(false);
  });

  it('refuses a file or folder others can write, and a symbolic link', async () => {
    const writable = await policyDir({ 'policy.json': '{}' });
    await chmod(join(writable, 'policy.json'), 0o666);
    expect(evaluatePolicy(await readLinuxPolicy({ dir: writable, ownership })).view.problems[0]?.message).toMatch(
      /writable by every user/,
    );

    const openDir = await policyDir({ 'policy.d/10.json': JSON.stringify({ theme: 'dark' }) });
    await chmod(join(openDir, 'policy.d'), 0o777);
    const fromOpenDir = evaluatePolicy(await readLinuxPolicy({ dir: openDir, ownership }));
    expect(fromOpenDir.view.state).toBe('invalid');
    expect(fromOpenDir.config).toEqual({});

    const linked = await policyDir({ 'elsewhere.json': '{}' });
    await symlink(join(linked, 'elsewhere.json'), join(linked, 'policy.json'));
    expect(evaluatePolicy(await readLinuxPolicy({ dir: linked, ownership })).view.problems[0]?.message).toMatch(
      /symbolic link/,
    );
  });

  it('stops on malformed JSON or a value of the wrong type, naming the file or the key', async () => {
    const broken = await policyDir({ 'policy.json': '{ "gatewayUrl": ' });
    const malformed = evaluatePolicy(await readLinuxPolicy({ dir: broken, ownership }));
    expect(malformed.view.state).toBe('invalid');
    expect(malformed.view.problems[0]?.message).toMatch(/is not valid JSON/);

    const wrong = await policyDir({
      'policy.json': JSON.stringify({ gatewayUrl: 'ftp://gw.lab.example', spellCheck: 'no', colour: 'red' }),
    });
    const policy = evaluatePolicy(await readLinuxPolicy({ dir: wrong, ownership }));
    expect(policy.view.problems.map((p) => p.key)).toEqual(['gatewayUrl', 'spellCheck']);
    expect(policy.view.entries.find((e) => e.key === 'colour')?.status).toBe('unknown');
    expect(policy.view.entries.every((e) => e.source === 'file' && e.level === 'machine')).toBe(true);
  });

  it('is unmanaged when /etc/clearance does not exist or holds no policy', async () => {
    expect(await readLinuxPolicy({ dir: join(tmpdir(), 'no-such-clearance-dir'), ownership })).toEqual({
      values: [],
      problems: [],
      present: false,
    });
    const empty = await policyDir({});
    expect(evaluatePolicy(await readLinuxPolicy({ dir: empty, ownership })).view.state).toBe('unmanaged');
  });
});

describe('readLinuxPolicy: fail closed on anything unexpected', () => {
  it('fails closed when the policy folder cannot be examined, and treats a path through a file as no policy', async () => {
    const parent = await policyDir({});
    const unreadable = join(parent, 'x'.repeat(300));
    const read = await readLinuxPolicy({ dir: unreadable, ownership });
    expect(read.present).toBe(true);
    expect(read.problems).toEqual([
      {
        location: unreadable,
        message: expect.stringMatching(new RegExp(`^${unreadable} cannot be read: .*ENAMETOOLONG`)),
      },
    ]);

    const plainFile = join(await policyDir({ 'etc-file': '{}' }), 'etc-file');
    expect(await readLinuxPolicy({ dir: join(plainFile, 'clearance'), ownership })).toEqual({
      values: [],
      problems: [],
      present: false,
    });
  });

  it('never reads the files of a folder it refuses', async () => {
    const dir = await policyDir({ 'policy.json': JSON.stringify({ gatewayUrl: 'https://attacker.example' }) });
    await chmod(dir, 0o777);
    const read = await readLinuxPolicy({ dir, ownership });
    expect(read).toEqual({
      values: [],
      problems: [{ location: dir, message: `${dir} is writable by every user; make it writable by root only` }],
      present: true,
    });
  });

  it('reads the drop-in files in name order, whatever order the folder lists them in', async () => {
    const names = ['30.json', '05.json', '20.json', '10.json', '25.json'];
    const dir = await policyDir(
      Object.fromEntries(names.map((n) => [`policy.d/${n}`, JSON.stringify({ supportContact: `desk ${n}` })])),
    );
    const policy = evaluatePolicy(await readLinuxPolicy({ dir, ownership }));
    expect(policy.view.entries.map((e) => e.location)).toEqual([...names].sort().map((n) => join(dir, 'policy.d', n)));
    expect(policy.config.supportContact).toBe('desk 30.json');
  });

  it('refuses a file over 256 KiB unread, and reads one of exactly 256 KiB', async () => {
    const body = JSON.stringify({ theme: 'dark' });
    const exact = body + ' '.repeat(256 * 1024 - body.length);
    const dir = await policyDir({ 'policy.json': exact, 'policy.d/10.json': `${exact} ` });
    const read = await readLinuxPolicy({ dir, ownership });
    const big = join(dir, 'policy.d', '10.json');
    expect(read.problems).toEqual([{ location: big, message: `${big} is larger than 262144 bytes` }]);
    expect(read.values).toEqual([
      { key: 'theme', value: 'dark', source: 'file', level: 'machine', location: join(dir, 'policy.json') },
    ]);
  });

  it('fails closed on a policy file that cannot be read (a folder in its place)', async () => {
    const dir = await policyDir({ 'policy.json/placeholder': '' });
    const read = await readLinuxPolicy({ dir, ownership });
    const policyJson = join(dir, 'policy.json');
    expect(read.problems).toEqual([
      { location: policyJson, message: expect.stringMatching(new RegExp(`^${policyJson} cannot be read: .*EISDIR`)) },
    ]);
    expect(read.present).toBe(true);
    expect(read.trustedFilePresent).toBe(false);
  });

  it('says whether it read a trusted file, and that a refused one is still a policy store', async () => {
    expect(await readLinuxPolicy({ dir: await policyDir({}), ownership })).toEqual({
      values: [],
      problems: [],
      present: false,
      trustedFilePresent: false,
    });
    const good = await readLinuxPolicy({ dir: await policyDir({ 'policy.json': '{}' }), ownership });
    expect(good).toMatchObject({ present: true, trustedFilePresent: true, problems: [] });
    const writable = await policyDir({ 'policy.json': '{}' });
    await chmod(join(writable, 'policy.json'), 0o666);
    expect(await readLinuxPolicy({ dir: writable, ownership })).toMatchObject({
      present: true,
      trustedFilePresent: false,
    });
  });

  it('strips only a leading byte-order mark, and names a file that is not a JSON object', async () => {
    const dir = await policyDir({ 'policy.json': JSON.stringify({ supportContact: 'IT\uFEFFdesk' }) });
    expect(evaluatePolicy(await readLinuxPolicy({ dir, ownership })).config).toEqual({
      supportContact: 'IT\uFEFFdesk',
    });
    const list = await policyDir({ 'policy.json': '["gatewayUrl"]' });
    const file = join(list, 'policy.json');
    expect((await readLinuxPolicy({ dir: list, ownership })).problems).toEqual([
      { location: file, message: `${file} must hold a JSON object of settings` },
    ]);
  });
});
