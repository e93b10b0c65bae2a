import { describe, expect, it } from 'vitest';
import { evaluatePolicy, type PolicyValue } from './policy';

const file = (key: string, value: unknown, location = '/etc/clearance/policy.json'): PolicyValue => ({
  key,
  value,
  source: 'file',
  level: 'machine',
  location,
});
const registry = (key: string, value: unknown, level: 'machine' | 'user'): PolicyValue => ({
  key,
  value,
  source: 'registry',
  level,
  location: `HKEY_${level === 'machine' ? 'LOCAL_MACHINE' : 'CURRENT_USER'}\\SOFTWARE\\Policies\\Clearance\\${key}`,
});

describe('evaluatePolicy', () => {
  it('matches names case-insensitively only in the registry; a file or profile must spell the key exactly', () => {
    const policy = evaluatePolicy({
      values: [file('Theme', 'dark'), registry('THEME', 'light', 'machine')],
      problems: [],
      present: true,
    });
    expect(policy.config).toEqual({ theme: 'light' });
    expect(policy.view.entries[0]).toEqual({
      key: 'Theme',
      value: 'dark',
      source: 'file',
      level: 'machine',
      location: '/etc/clearance/policy.json',
      status: 'unknown',
      reason: 'This version of Clearance does not know this key (a typo, or a key from a newer version); ignored.',
    });
  });

  it('shows lists and objects as JSON on the Policies page', () => {
    const policy = evaluatePolicy({
      values: [file('externalHosts', ['help.lab.example'])],
      problems: [],
      present: true,
    });
    expect(policy.view.entries[0]?.value).toBe('["help.lab.example"]');
  });

  it('says the machine policy wins over a user value, and which file replaced an earlier one', () => {
    const policy = evaluatePolicy({
      values: [
        registry('theme', 'dark', 'machine'),
        registry('theme', 'light', 'user'),
        file('supportContact', 'First desk', '/etc/clearance/policy.json'),
        file('supportContact', 'Second desk', '/etc/clearance/policy.d/10.json'),
      ],
      problems: [],
      present: true,
    });
    expect(policy.view.entries.map((e) => [e.key, e.status, e.reason])).toEqual([
      ['theme', 'applied', undefined],
      ['theme', 'overridden', 'The machine policy sets this key.'],
      ['supportContact', 'overridden', 'Replaced by /etc/clearance/policy.d/10.json.'],
      ['supportContact', 'applied', undefined],
    ]);
    expect(policy.config).toEqual({ theme: 'dark', supportContact: 'Second desk' });
  });

  it('names the lock entries it ignores, and says nothing when every lock is known', () => {
    const mixed = evaluatePolicy({
      values: [file('locks', ['theme', 'gatewayUrl', 'x'])],
      problems: [],
      present: true,
    });
    expect(mixed.view.entries[0]?.reason).toBe(
      'Ignored "gatewayUrl", "x": not a setting of this version (lockable: theme, spellCheck).',
    );
    expect(mixed.view.locked).toEqual(['theme']);
    const known = evaluatePolicy({ values: [file('locks', ['theme'])], problems: [], present: true });
    expect(known.view.entries[0]).not.toHaveProperty('reason');
  });

  it('gives the app the theme, spell check and support contact IT set, and nothing it did not', () => {
    const set = evaluatePolicy({
      values: [file('theme', 'dark'), file('spellCheck', false), file('supportContact', 'IT desk')],
      problems: [],
      present: true,
    });
    expect(set.view).toMatchObject({ settings: { theme: 'dark', spellCheck: false }, supportContact: 'IT desk' });
    const none = evaluatePolicy({
      values: [file('gatewayUrl', 'https://gw.lab.example')],
      problems: [],
      present: true,
    });
    expect(none.view.settings).toStrictEqual({});
    expect(none.view).not.toHaveProperty('supportContact');
  });

  it('names every problem of a value, one after another', () => {
    const policy = evaluatePolicy({ values: [file('tpmTcti', `x${'y'.repeat(200)}`)], problems: [], present: true });
    expect(policy.view.problems[0]?.message).toBe(
      'Too big: expected string to have <=200 characters; must be a tpm2-tools TCTI such as device:/dev/tpmrm0',
    );
  });

  it('is managed when a store holds values, and invalid when it only reports problems', () => {
    expect(evaluatePolicy({ values: [file('theme', 'dark')], problems: [], present: false })).toMatchObject({
      present: true,
      view: { state: 'managed' },
    });
    const broken = evaluatePolicy({ values: [], problems: [{ location: 'x', message: 'unreadable' }], present: false });
    expect(broken).toMatchObject({ present: true, view: { state: 'invalid' } });
    expect(evaluatePolicy({ values: [], problems: [], present: false }).view.state).toBe('unmanaged');
  });

  it('reports a trusted policy file only when the reader saw one and nothing was wrong', () => {
    const values = [file('theme', 'dark')];
    expect(evaluatePolicy({ values, problems: [], present: true }).trustedFilePresent).toBe(false);
    expect(evaluatePolicy({ values, problems: [], present: true, trustedFilePresent: true }).trustedFilePresent).toBe(
      true,
    );
    expect(
      evaluatePolicy({
        values: [...values, file('spellCheck', 'yes')],
        problems: [],
        present: true,
        trustedFilePresent: true,
      }).trustedFilePresent,
    ).toBe(false);
  });
});
