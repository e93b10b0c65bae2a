import { describe, expect, it } from 'vitest';
import { evaluatePolicy } from './policy';
import { recorded, recordedRunner, result } from './testing/recorded';
import { parseRegQuery, readWindowsPolicy, REG_EXE } from './windows';

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
