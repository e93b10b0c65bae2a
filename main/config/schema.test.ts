import { describe, expect, it } from 'vitest';
import { evaluatePolicy } from './policy';
import { type ManagedKey, valueKind } from './schema';

/** What a machine policy file holding only `key: value` makes of it: applied, or the problem that stops the app. */
function judge(key: string, value: unknown): { applied: boolean; problem?: string } {
  const policy = evaluatePolicy({
    values: [{ key, value, source: 'file', level: 'machine', location: '/etc/clearance/policy.json' }],
    problems: [],
    present: true,
  });
  const problem = policy.view.problems[0]?.message;
  return { applied: key in policy.config, ...(problem !== undefined ? { problem } : {}) };
}

const label = (n: number) => 'a'.repeat(n);

describe('ManagedConfig: what IT may set', () => {
  it('takes the gateway over https, or http for a lab gateway, and no other scheme', () => {
    expect(judge('gatewayUrl', 'https://gw.lab.example').applied).toBe(true);
    expect(judge('gatewayUrl', 'http://gw.lab.example').applied).toBe(true);
    for (const url of ['ftp://gw.lab.example', 'git+https://gw.lab.example', 'httpsx://gw.lab.example']) {
      expect(judge('gatewayUrl', url), url).toMatchObject({ applied: false, problem: expect.any(String) });
    }
  });

  it('takes the sign-in authority, the update feed and the dictionary source over https only', () => {
    for (const key of ['authority', 'updateUrl', 'spellCheckDictionaryUrl']) {
      expect(judge(key, 'https://login.lab.example/tenant').applied, key).toBe(true);
      for (const url of [
        'http://login.lab.example/',
        'git+https://login.lab.example/',
        'httpsx://login.lab.example/',
      ]) {
        expect(judge(key, url).applied, `${key} ${url}`).toBe(false);
      }
    }
  });

  it('takes external hosts as bare host names, never URLs, over-long names or single labels', () => {
    expect(judge('externalHosts', ['help.lab.example', 'x.lab.example']).applied).toBe(true);
    // 253 characters is the longest host name DNS allows; 254 is refused.
    const longestValid = [label(63), label(63), label(63), `${label(57)}.com`].join('.');
    expect(longestValid).toHaveLength(253);
    expect(judge('externalHosts', [longestValid]).applied).toBe(true);
    const tooLong = [label(63), label(63), label(63), `${label(58)}.com`].join('.');
    expect(tooLong).toHaveLength(254);
    expect(judge('externalHosts', [tooLong]).applied).toBe(false);
    expect(judge('externalHosts', ['https://help.lab.example'])).toEqual({
      applied: false,
      problem: '0: must be a host name such as help.lab.example',
    });
    expect(judge('externalHosts', ['help.lab.example/path']).applied).toBe(false);
    expect(judge('externalHosts', ['localhost']).applied).toBe(false);
  });

  it('takes one to ten pinned entitlement keys', () => {
    const key = { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' };
    expect(judge('pinnedEntitlementKeys', [key, { ...key, kid: 'next' }]).applied).toBe(true);
    expect(
      judge(
        'pinnedEntitlementKeys',
        Array.from({ length: 10 }, () => key),
      ).applied,
    ).toBe(true);
    expect(
      judge(
        'pinnedEntitlementKeys',
        Array.from({ length: 11 }, () => key),
      ).applied,
    ).toBe(false);
    expect(judge('pinnedEntitlementKeys', []).applied).toBe(false);
  });

  it('takes a tpm2-tools TCTI and nothing a shell or another tool could read differently', () => {
    for (const tcti of ['device:/dev/tpmrm0', 'tabrmd', 'swtpm:host=127.0.0.1,port=2321', 'mssim:port=2321']) {
      expect(judge('tpmTcti', tcti).applied, tcti).toBe(true);
    }
    for (const tcti of [
      'rm -rf /;device',
      'device:/dev/tpm0;reboot',
      'device:/dev/tpm0 x',
      `device:${'/'.repeat(200)}`,
    ]) {
      expect(judge('tpmTcti', tcti).applied, tcti).toBe(false);
    }
    expect(judge('tpmTcti', ' tabrmd ').applied).toBe(true);
    expect(judge('tpmTcti', 'nosuch:/dev/tpm0').problem).toBe('must be a tpm2-tools TCTI such as device:/dev/tpmrm0');
  });

  it('takes a client ID and a support contact of sensible length, not blank', () => {
    expect(judge('clientId', '11111111-1111-1111-1111-111111111111').applied).toBe(true);
    expect(judge('clientId', 'x'.repeat(200)).applied).toBe(true);
    expect(judge('clientId', 'x'.repeat(201)).applied).toBe(false);
    expect(judge('clientId', '   ').applied).toBe(false);
    expect(judge('supportContact', 'x'.repeat(300)).applied).toBe(true);
    expect(judge('supportContact', 'x'.repeat(301)).applied).toBe(false);
    expect(judge('supportContact', '   ').applied).toBe(false);
  });

  it('takes the device certificate issuer as a name of sensible length, not blank', () => {
    expect(judge('deviceCertificateIssuer', '  Lab Device CA ')).toEqual({ applied: true });
    expect(judge('deviceCertificateIssuer', 'x'.repeat(256)).applied).toBe(true);
    expect(judge('deviceCertificateIssuer', 'x'.repeat(257)).applied).toBe(false);
    expect(judge('deviceCertificateIssuer', '   ').applied).toBe(false);
  });

  it('takes the telemetry levels it knows', () => {
    expect(judge('telemetry', 'off').applied).toBe(true);
    expect(judge('telemetry', 'errors').applied).toBe(true);
    expect(judge('telemetry', 'on').applied).toBe(false);
  });
});

describe('valueKind: how each key is stored in the registry and property lists', () => {
  it('derives the storage kind from the zod type', () => {
    const kinds = Object.fromEntries(
      (['gatewayUrl', 'theme', 'spellCheck', 'externalHosts', 'locks', 'pinnedEntitlementKeys'] as ManagedKey[]).map(
        (key) => [key, valueKind(key)],
      ),
    );
    expect(kinds).toEqual({
      gatewayUrl: { kind: 'string' },
      theme: { kind: 'enum', values: ['system', 'light', 'dark'] },
      spellCheck: { kind: 'boolean' },
      externalHosts: { kind: 'string-list' },
      locks: { kind: 'string-list' },
      pinnedEntitlementKeys: { kind: 'json' },
    });
  });

  it('refuses a key the schema does not have', () => {
    expect(() => valueKind('noSuchKey' as ManagedKey)).toThrow('Unknown managed key noSuchKey');
  });
});
