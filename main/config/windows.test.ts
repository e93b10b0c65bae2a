import { describe, expect, it } from 'vitest';
import { evaluatePolicy } from './policy';
import { recorded, recordedRunner, result } from './testing/recorded';
import type { CommandResult, CommandRunner } from '../platform';
import { parseRegQuery, readWindowsPolicy, REG_EXE, registryPolicyValues } from './windows';

const HKLM = 'HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies';
const HKCU = 'HKEY_CURRENT_USER\\SOFTWARE\\Policies';
const query = (key: string, recursive = false) => `${REG_EXE} query ${key}${recursive ? ' /s' : ''}`;

function windows(machine?: string, user?: string) {
  return recordedRunner({
    [query(HKLM)]: result(recorded(machine ? 'win32/reg-policies-hklm.txt' : 'win32/reg-policies-hklm-without.txt')),
    [query(HKCU)]: result(recorded(user ? 'win32/reg-policies-hkcu.txt' : 'win32/reg-policies-hkcu-without.txt')),
    ...(machine ? { [query(`${HKLM}\\Clearance`, true)]: result(recorded(machine)) } : {}),
    ...(user ? { [query(`${HKCU}\\Clearance`, true)]: result(recorded(user)) } : {}),
  });
}

describe('parseRegQuery', () => {
  it('reads keys and values from CRLF output, keeping spaces inside names and data', () => {
    const keys = parseRegQuery(recorded('win32/reg-hklm.txt'));
    expect(recorded('win32/reg-hklm.txt')).toContain('\r\n');
    expect(keys.map((k) => k.path)).toEqual([
      `${HKLM}\\Clearance`,
      `${HKLM}\\Clearance\\externalHosts`,
      `${HKLM}\\Clearance\\locks`,
    ]);
    expect(keys[0]?.values).toContainEqual({
      name: 'supportContact',
      type: 'REG_SZ',
      data: 'IT Service Desk    +44 20 7946 0000',
    });
  });

  it('skips the translated default value and keeps non-ASCII data (German Windows)', () => {
    const [key] = parseRegQuery(recorded('win32/reg-hklm-de.txt'));
    expect(key?.values.map((v) => v.name)).toEqual(['GatewayUrl', 'supportContact', 'Locks']);
    expect(key?.values[1]?.data).toBe('IT-Servicedesk München, Durchwahl 1234');
  });
});

describe('readWindowsPolicy', () => {
  it('reads the machine key by type: text, DWORD booleans, JSON text, and lists in numeric order', async () => {
    const policy = evaluatePolicy(await readWindowsPolicy(windows('win32/reg-hklm.txt')));
    expect(policy.view.state).toBe('managed');
    expect(policy.config).toEqual({
      gatewayUrl: 'https://clearance-gateway.lab.example',
      updatePolicy: 'notify',
      allowBasicTextTokenCache: false,
      spellCheck: true,
      theme: 'dark',
      supportContact: 'IT Service Desk    +44 20 7946 0000',
      pinnedEntitlementKeys: [{ kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' }],
      externalHosts: ['help.lab.example', 'access.lab.example', 'wiki.lab.example'],
      locks: ['theme'],
    });
    const gateway = policy.view.entries.find((e) => e.key === 'gatewayUrl');
    expect(gateway).toMatchObject({
      source: 'registry',
      level: 'machine',
      status: 'applied',
      location: `${HKLM}\\Clearance\\gatewayUrl`,
    });
  });

  it('reports an unknown key and a lock on a setting that does not exist, without stopping the app', async () => {
    const policy = evaluatePolicy(await readWindowsPolicy(windows('win32/reg-hklm.txt')));
    expect(policy.view.problems).toEqual([]);
    expect(policy.view.entries.find((e) => e.key === 'futureSetting')).toMatchObject({
      status: 'unknown',
      value: 'on',
    });
    expect(policy.view.entries.find((e) => e.key === 'locks')?.reason).toMatch(/Ignored "gatewayUrl"/);
    expect(policy.view.locked).toEqual(['theme']);
  });

  it('takes the machine value over the user value, and refuses machine-only keys from HKCU', async () => {
    const policy = evaluatePolicy(await readWindowsPolicy(windows('win32/reg-hklm.txt', 'win32/reg-hkcu.txt')));
    expect(policy.view.state).toBe('managed');
    expect(policy.config.theme).toBe('dark');
    expect(policy.config.spellCheck).toBe(true);
    expect(policy.config.gatewayUrl).toBe('https://clearance-gateway.lab.example');
    const user = policy.view.entries.filter((e) => e.level === 'user');
    expect(user.map((e) => [e.key, e.status])).toEqual([
      ['theme', 'overridden'],
      ['spellCheck', 'overridden'],
      ['gatewayUrl', 'rejected'],
    ]);
    expect(user[2]?.reason).toMatch(/Only a machine policy/);
  });

  it('applies a user value that the machine does not set', async () => {
    const policy = evaluatePolicy(await readWindowsPolicy(windows(undefined, 'win32/reg-hkcu.txt')));
    expect(policy.config).toEqual({ theme: 'light', spellCheck: false });
    expect(policy.view.entries.find((e) => e.key === 'gatewayUrl')?.status).toBe('rejected');
  });

  it('matches registry names case-insensitively and reads REG_MULTI_SZ lists', async () => {
    const policy = evaluatePolicy(await readWindowsPolicy(windows('win32/reg-hklm-de.txt')));
    expect(policy.config).toEqual({
      gatewayUrl: 'https://clearance-gateway.lab.example',
      supportContact: 'IT-Servicedesk München, Durchwahl 1234',
      locks: ['theme', 'spellCheck'],
    });
  });

  it('stops on values of the wrong type, naming each key and what was expected', async () => {
    const policy = evaluatePolicy(await readWindowsPolicy(windows('win32/reg-wrong-types.txt')));
    expect(policy.view.state).toBe('invalid');
    const problems = Object.fromEntries(policy.view.problems.map((p) => [p.key, p.message]));
    expect(Object.keys(problems).sort()).toEqual([
      'externalHosts',
      'pinnedEntitlementKeys',
      'spellCheck',
      'theme',
      'updatePolicy',
    ]);
    expect(problems.spellCheck).toMatch(/REG_DWORD of 1 \(on\) or 0 \(off\), found REG_SZ true/);
    expect(problems.updatePolicy).toMatch(/"off"\|"notify"\|"auto"/);
    expect(problems.pinnedEntitlementKeys).toMatch(/not valid JSON/);
    expect(problems.externalHosts).toMatch(/subkey externalHosts/);
  });

  it('is unmanaged when no Clearance key is listed, whatever language reg.exe speaks', async () => {
    const runner = windows();
    const read = await readWindowsPolicy(runner);
    expect(read).toEqual({ values: [], problems: [], present: false });
    expect(runner.calls).toEqual([query(HKLM), query(HKCU)]);
  });

  it('fails closed when the key is listed but reading it fails (access denied), or reg.exe cannot run', async () => {
    const denied = recordedRunner({
      [query(HKLM)]: result(recorded('win32/reg-policies-hklm.txt')),
      [query(`${HKLM}\\Clearance`, true)]: result('', 1, recorded('win32/reg-access-denied.stderr.txt')),
      [query(HKCU)]: result('', 1, recorded('win32/reg-not-found-de.stderr.txt')),
    });
    const policy = evaluatePolicy(await readWindowsPolicy(denied));
    expect(policy.view.state).toBe('invalid');
    expect(policy.view.problems[0]?.message).toMatch(/Access is denied/);
    expect(policy.config).toEqual({});

    const missing = evaluatePolicy(await readWindowsPolicy(recordedRunner({})));
    expect(missing.view.state).toBe('invalid');
    expect(missing.view.problems[0]?.message).toMatch(/ENOENT/);
  });

  it('runs reg.exe by absolute path, never through PATH', async () => {
    const runner = windows('win32/reg-hklm.txt');
    await readWindowsPolicy(runner);
    expect(runner.calls.every((c) => c.startsWith('C:\\Windows\\System32\\reg.exe '))).toBe(true);
  });
});

describe('parseRegQuery: the line grammar of reg.exe output', () => {
  const CLEARANCE = `${HKLM}\\Clearance`;

  it('reads LF-only output, a bare hive line and a key line with trailing blanks', () => {
    const keys = parseRegQuery(`HKEY_CURRENT_USER\n    a    REG_SZ    1\n${CLEARANCE}  \n    b    REG_SZ    2\n`);
    expect(keys).toEqual([
      { path: 'HKEY_CURRENT_USER', values: [{ name: 'a', type: 'REG_SZ', data: '1' }] },
      { path: CLEARANCE, values: [{ name: 'b', type: 'REG_SZ', data: '2' }] },
    ]);
  });

  it('takes an empty value printed without data, and only lines indented by four spaces as values', () => {
    const keys = parseRegQuery(
      [
        CLEARANCE,
        '    supportContact    REG_SZ',
        'noise    theme    REG_SZ    dark',
        '      ',
        `    pointer    REG_SZ    ${HKLM}\\Other`,
        'HKEY_LOCAL_MACHINE is not a key line',
        `  ${HKLM}\\Indented`,
        '    theme    REG_SZ\tdark',
      ].join('\r\n'),
    );
    expect(keys).toEqual([
      {
        path: CLEARANCE,
        values: [
          { name: 'supportContact', type: 'REG_SZ', data: '' },
          { name: 'pointer', type: 'REG_SZ', data: `${HKLM}\\Other` },
        ],
      },
    ]);
  });

  it('skips only the default value, whose whole name is in brackets', () => {
    const [key] = parseRegQuery(
      `${CLEARANCE}\r\n    (Default)    REG_SZ    x\r\n    note (old)    REG_SZ    y\r\n    (old) note    REG_SZ    z\r\n`,
    );
    expect(key?.values.map((v) => v.name)).toEqual(['note (old)', '(old) note']);
  });
});

describe('registryPolicyValues and readWindowsPolicy: fail closed on anything unexpected', () => {
  const CLEARANCE = `${HKLM}\\Clearance`;
  const machine = (text: string) =>
    evaluatePolicy({ values: registryPolicyValues(parseRegQuery(text), 'machine'), problems: [], present: true });
  const problemOf = (text: string, key: string) => machine(text).view.problems.find((p) => p.key === key)?.message;

  it('takes text settings from REG_SZ and REG_EXPAND_SZ only, and says what it found otherwise', () => {
    expect(machine(`${CLEARANCE}\r\n    supportContact    REG_EXPAND_SZ    Desk\r\n`).config).toEqual({
      supportContact: 'Desk',
    });
    expect(problemOf(`${CLEARANCE}\r\n    supportContact    REG_DWORD    0x1\r\n`, 'supportContact')).toBe(
      'expected a REG_SZ text value, found REG_DWORD 0x1',
    );
    expect(problemOf(`${CLEARANCE}\r\n    theme    REG_BINARY\r\n`, 'theme')).toBe(
      'expected a REG_SZ text value, found REG_BINARY',
    );
  });

  it('takes booleans only as a REG_DWORD of exactly 0 or 1', () => {
    expect(machine(`${CLEARANCE}\r\n    spellCheck    REG_DWORD    0x0\r\n`).config).toEqual({ spellCheck: false });
    expect(problemOf(`${CLEARANCE}\r\n    spellCheck    REG_DWORD    0x10\r\n`, 'spellCheck')).toBe(
      'expected a REG_DWORD of 1 (on) or 0 (off), found REG_DWORD 0x10',
    );
    expect(problemOf(`${CLEARANCE}\r\n    spellCheck    REG_SZ    0x1\r\n`, 'spellCheck')).toBe(
      'expected a REG_DWORD of 1 (on) or 0 (off), found REG_SZ 0x1',
    );
  });

  it('takes JSON settings only from text values', () => {
    expect(
      problemOf(`${CLEARANCE}\r\n    pinnedEntitlementKeys    REG_DWORD    0x1\r\n`, 'pinnedEntitlementKeys'),
    ).toBe('expected a REG_SZ holding JSON, found REG_DWORD 0x1');
  });

  it('takes lists as REG_MULTI_SZ or as a subkey of values named 1, 2, 3… in numeric order', () => {
    expect(
      machine(`${CLEARANCE}\r\n    externalHosts    REG_MULTI_SZ    a.lab.example\\0b.lab.example\\0\\0\r\n`).config,
    ).toEqual({ externalHosts: ['a.lab.example', 'b.lab.example'] });
    expect(problemOf(`${CLEARANCE}\r\n    externalHosts    REG_SZ    a.lab.example\r\n`, 'externalHosts')).toBe(
      'expected a list: a subkey externalHosts with values named 1, 2, 3… (what the template writes), found REG_SZ a.lab.example',
    );
    const subkey = `${CLEARANCE}\\externalHosts\r\n    10    REG_SZ    c.lab.example\r\n    2    REG_SZ    b.lab.example\r\n    1    REG_SZ    a.lab.example\r\n`;
    expect(machine(subkey).config).toEqual({ externalHosts: ['a.lab.example', 'b.lab.example', 'c.lab.example'] });
  });

  it('stops on a list entry that is not text or not numbered, naming it', () => {
    expect(problemOf(`${CLEARANCE}\\locks\r\n    1    REG_DWORD    0x1\r\n`, 'locks')).toBe(
      'list entries must be REG_SZ values named 1, 2, 3…; found REG_DWORD "1"',
    );
    expect(
      problemOf(`${CLEARANCE}\\locks\r\n    1    REG_SZ    theme\r\n    first    REG_SZ    theme\r\n`, 'locks'),
    ).toBe('list entries must be REG_SZ values named 1, 2, 3…; found REG_SZ "first"');
    expect(problemOf(`${CLEARANCE}\\locks\r\n    1a    REG_SZ    theme\r\n`, 'locks')).toMatch(/found REG_SZ "1a"$/);
    expect(problemOf(`${CLEARANCE}\\locks\r\n    x1    REG_SZ    theme\r\n`, 'locks')).toMatch(/found REG_SZ "x1"$/);
  });

  it('stops on a subkey for a setting that is not a list; reports an unknown subkey; ignores deeper and foreign keys', () => {
    expect(problemOf(`${CLEARANCE}\\theme\r\n    1    REG_SZ    dark\r\n`, 'theme')).toBe(
      'expected a value of SOFTWARE\\Policies\\Clearance, found a subkey',
    );
    const policy = machine(
      [
        `${CLEARANCE}\\futureList`,
        '    1    REG_SZ    x',
        `${CLEARANCE}\\externalHosts\\deeper`,
        '    1    REG_SZ    evil.example',
        `${HKLM}\\ClearanceOther\\theme`,
        '    theme    REG_SZ    dark',
        `${HKCU}\\Clearance`,
        '    theme    REG_SZ    light',
      ].join('\r\n'),
    );
    expect(policy.view.problems).toEqual([]);
    expect(policy.config).toEqual({});
    expect(policy.view.entries.map((e) => [e.key, e.status])).toEqual([['futureList', 'unknown']]);
  });

  /** A runner answering `reg query` from a table, recording each call with its options. */
  function runner(table: Record<string, CommandResult>) {
    const calls: Array<{ line: string; timeoutMs: number | undefined }> = [];
    const commands: CommandRunner = {
      async run(command, args, options) {
        const line = [command, ...args].join(' ');
        calls.push({ line, timeoutMs: options?.timeoutMs });
        return table[line] ?? { exitCode: null, stdout: '', stderr: '', error: `spawn ${command} ENOENT` };
      },
    };
    return { commands, calls };
  }
  const listed = result(recorded('win32/reg-policies-hklm.txt'));
  const userNotListed = result(recorded('win32/reg-policies-hkcu-without.txt'));
  const clearance = result(recorded('win32/reg-hklm.txt'));

  it('gives every reg.exe call a timeout', async () => {
    const { commands, calls } = runner({
      [query(HKLM)]: listed,
      [query(`${HKLM}\\Clearance`, true)]: clearance,
      [query(HKCU)]: userNotListed,
    });
    const read = await readWindowsPolicy(commands);
    expect(read.present).toBe(true);
    expect(calls).toEqual([
      { line: query(HKLM), timeoutMs: 10_000 },
      { line: query(`${HKLM}\\Clearance`, true), timeoutMs: 10_000 },
      { line: query(HKCU), timeoutMs: 10_000 },
    ]);
  });

  it('fails closed when listing the machine policies fails in any way, and says how', async () => {
    for (const [listing, message] of [
      [
        result('', 1, '  ERROR: The system was unable to find the specified registry key.\r\n'),
        'The registry could not be read (reg.exe exit 1: ERROR: The system was unable to find the specified registry key.)',
      ],
      [result(recorded('win32/reg-policies-hklm.txt'), null), 'The registry could not be read (reg.exe exit none)'],
      [result('', 5, ' \r\n'), 'The registry could not be read (reg.exe exit 5)'],
      [{ ...listed, error: 'reg.exe timed out' }, 'The registry could not be read (reg.exe reg.exe timed out)'],
    ] as const) {
      const { commands } = runner({
        [query(HKLM)]: listing,
        [query(`${HKLM}\\Clearance`, true)]: clearance,
        [query(HKCU)]: userNotListed,
      });
      const read = await readWindowsPolicy(commands);
      expect(read).toEqual({
        values: [],
        problems: [{ location: HKLM, message }],
        present: true,
      });
    }
  });

  it('ignores a user hive that cannot be listed (no user policy), keeping the machine policy', async () => {
    const { commands } = runner({
      [query(HKLM)]: listed,
      [query(`${HKLM}\\Clearance`, true)]: clearance,
      [query(HKCU)]: result('', 1, 'ERROR: Access is denied.'),
    });
    const policy = evaluatePolicy(await readWindowsPolicy(commands));
    expect(policy.view.state).toBe('managed');
    expect(policy.view.problems).toEqual([]);
    expect(policy.config.gatewayUrl).toBe('https://clearance-gateway.lab.example');
  });

  it('fails closed when the listed policy key reads back empty, with an error, or with a failing exit', async () => {
    for (const answer of [result('', 0), { ...clearance, error: 'reg.exe timed out' }, { ...clearance, exitCode: 1 }]) {
      const { commands } = runner({
        [query(HKLM)]: listed,
        [query(`${HKLM}\\Clearance`, true)]: answer,
        [query(HKCU)]: userNotListed,
      });
      const read = await readWindowsPolicy(commands);
      expect(read.values).toEqual([]);
      expect(read.present).toBe(true);
      expect(read.problems.map((p) => p.location)).toEqual([`${HKLM}\\Clearance`]);
      expect(evaluatePolicy(read).view.state).toBe('invalid');
    }
  });
});
