import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DiscoveryDocument } from '../../shared/discovery';
import { loadDiscovery } from '../access/discovery';
import { GatewaySession } from './gateway-session';
import { discoveryTransportProblems, transportProblem } from './transport';

const SETTING = 'The gateway URL (managed setting gatewayUrl)';

const discovery = (base: string, authority: string): DiscoveryDocument => ({
  issuer: base,
  jwks_uri: `${base}/.well-known/jwks.json`,
  identity_provider: { authority, client_id: 'c', scopes: ['s'], protocol: 'OIDC' },
  endpoints: {
    device_challenge: `${base}/v1/device/challenge`,
    session: `${base}/v1/session`,
    entitlements: `${base}/v1/entitlements`,
    events: `${base}/v1/events`,
    models: `${base}/v1/models`,
    chat_completions: `${base}/v1/chat/completions`,
  },
  device_policy: { required_checks: [] },
});

describe('https only when packaged', () => {
  it.each([
    ['https://gateway.lab.example', true],
    ['https://gateway.lab.example', false],
    ['http://127.0.0.1:8787', false],
    ['http://localhost:8787', false],
    ['http://[::1]:8787', false],
  ])('allows %s (packaged: %s)', (url, packaged) => {
    expect(transportProblem(url, SETTING, packaged)).toBeUndefined();
  });

  it.each([
    ['http://127.0.0.1:8787', true, 'must be an https:// URL in the installed app'],
    ['http://localhost:8787', true, 'must be an https:// URL in the installed app'],
    ['http://gateway.lab.example', false, 'only for a loopback address in development'],
    ['http://127.0.0.1.nip.io', false, 'only for a loopback address in development'],
    ['ftp://gateway.lab.example', true, 'must be an https:// URL'],
    ['gateway.lab.example', true, 'is not a URL'],
  ])('refuses %s (packaged: %s), naming the setting', (url, packaged, message) => {
    const problem = transportProblem(url, SETTING, packaged);
    expect(problem).toContain(SETTING);
    expect(problem).toContain(message);
  });

  it('checks every URL discovery names', () => {
    const problems = discoveryTransportProblems(
      discovery('https://gateway.lab.example', 'http://idp.lab.example'),
      true,
    );
    expect(problems).toEqual([
      expect.stringContaining('identity provider authority (discovery identity_provider.authority)'),
    ]);
    expect(discoveryTransportProblems(discovery('http://127.0.0.1:8787', 'https://idp'), true)).toHaveLength(8);
    expect(discoveryTransportProblems(discovery('http://127.0.0.1:8787', 'https://idp'), false)).toEqual([]);
  });

  it('the session refuses an http gateway in the installed app before sending anything', () => {
    let sent = 0;
    const make = (packaged: boolean) =>
      new GatewaySession({
        gatewayUrl: 'http://127.0.0.1:8787',
        packaged,
        http: async () => {
          sent += 1;
          return new Response('');
        },
        clock: { now: () => Date.now() },
        deviceKey: () => Promise.reject(new Error('unused')),
        posture: async () => [],
        getIdpAccessToken: async () => 'token',
        appVersion: '0.1.0',
        platform: 'linux',
      } as ConstructorParameters<typeof GatewaySession>[0]);
    expect(() => make(true)).toThrow('managed setting gatewayUrl) must be an https:// URL in the installed app');
    expect(() => make(false)).not.toThrow();
    expect(sent).toBe(0);
  });

  it('discovery refuses an http gateway or an http identity provider when packaged, and never falls back to the cache', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clearance-transport-'));
    try {
      const paths = { userData: dir, logs: dir };
      let fetched = 0;
      const http = async () => {
        fetched += 1;
        return Response.json(discovery('https://gateway.lab.example', 'http://idp.lab.example'));
      };
      await expect(loadDiscovery('http://127.0.0.1:8787', http, paths, true)).rejects.toThrow('gatewayUrl');
      expect(fetched).toBe(0);
      await writeFile(
        join(dir, 'gateway-discovery.json'),
        JSON.stringify(discovery('https://gateway.lab.example', 'https://idp.lab.example')),
      );
      await expect(loadDiscovery('https://gateway.lab.example', http, paths, true)).rejects.toThrow(
        'identity_provider.authority',
      );
      expect(fetched).toBe(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
