import { describe, expect, it } from 'vitest';
import type { DiscoveryDocument } from '../../shared/discovery';
import { buildDiagnostics, type DiagnosticsInput } from './bundle';
import { LogRing } from './log-ring';
import { redactText } from './redact';

/** One of each kind of secret the bundle must never hold. */
const SECRETS = {
  accessToken:
    'eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJhbGljZSIsImF1ZCI6ImFwaTovL2NsZWFyYW5jZSJ9.c2lnbmF0dXJlLXBsYW50ZWQ',
  refreshToken: 'rt-0.AXkAplantedRefreshTokenValue9876543210',
  dpopProof: 'eyJ0eXAiOiJkcG9wK2p3dCJ9.eyJodG0iOiJQT1NUIn0.ZHBvcC1zaWduYXR1cmU',
  bearerOpaque: 'opaquePlantedBearer_1234567890abcdef',
  privateKeyPem:
    '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgPLANTEDPLANTED\n-----END PRIVATE KEY-----',
  privateJwkD: 'PlantedPrivateScalarD_abcdefghijklmnop',
  cookie: 'session=PlantedCookieValue42; Path=/; HttpOnly',
  apiKey: 'sk-proj-PlantedUpstreamApiKey1234567890',
  messageText: 'PLANTED MESSAGE TEXT: the export-controlled answer nobody may read',
  clientSecret: 'PlantedClientSecretValue',
  urlPassword: 'PlantedFeedPassword77',
};

const FEED_WITH_CREDENTIALS = `https://feed-user:${SECRETS.urlPassword}@updates.lab.example/clearance/`;

const discovery: DiscoveryDocument = {
  issuer: 'https://gateway.lab.example',
  jwks_uri: 'https://gateway.lab.example/.well-known/jwks.json',
  identity_provider: {
    authority: 'https://idp.lab.example',
    client_id: 'clearance',
    scopes: ['openid'],
    protocol: 'OIDC',
  },
  endpoints: {
    device_challenge: 'https://gateway.lab.example/v1/device/challenge',
    session: 'https://gateway.lab.example/v1/session',
    entitlements: 'https://gateway.lab.example/v1/entitlements',
    events: 'https://gateway.lab.example/v1/events',
    models: 'https://gateway.lab.example/v1/models',
    chat_completions: 'https://gateway.lab.example/v1/chat/completions',
  },
  device_policy: { required_checks: ['disk-encryption'] },
  support_contact: 'it@lab.example',
};

function plantedInput(): DiagnosticsInput {
  const ring = new LogRing(300, () => Date.UTC(2026, 10, 28, 20, 0, 0));
  ring.add('info', `GET /v1/entitlements Authorization: Bearer ${SECRETS.bearerOpaque}`);
  ring.add('info', `DPoP ${SECRETS.dpopProof}`);
  ring.add(
    'error',
    'token refresh failed',
    new Error(`refresh_token=${SECRETS.refreshToken}&client_secret=${SECRETS.clientSecret}`),
  );
  ring.add(
    'warn',
    `device key ${JSON.stringify({ kty: 'EC', crv: 'P-256', x: 'abc', y: 'def', d: SECRETS.privateJwkD })}`,
  );
  ring.add('error', `key material ${SECRETS.privateKeyPem}`);
  ring.add('info', `upstream answered; set-cookie: ${SECRETS.cookie}`);
  ring.add('info', `calling upstream with ${SECRETS.apiKey}`);
  ring.add('info', `id token ${SECRETS.accessToken}`);
  return {
    app: { version: '0.1.0', shell: 'harness', packaged: false },
    platform: { os: 'linux', arch: 'x64', release: '6.1.0' },
    gatewayUrl: {
      value: 'https://gateway.lab.example',
      source: 'managed setting gatewayUrl (file, /etc/clearance/policy.json)',
    },
    managed: {
      state: 'managed',
      entries: [
        {
          key: 'gatewayUrl',
          value: 'https://gateway.lab.example',
          source: 'file',
          level: 'machine',
          location: '/etc/clearance/policy.json',
          status: 'applied',
        },
        {
          key: 'updateUrl',
          value: FEED_WITH_CREDENTIALS,
          source: 'file',
          level: 'machine',
          location: '/etc/clearance/policy.json',
          status: 'applied',
        },
        {
          key: 'clientSecret',
          value: SECRETS.clientSecret,
          source: 'file',
          level: 'machine',
          location: '/etc/clearance/policy.json',
          status: 'unknown',
        },
      ],
      problems: [],
      locked: [],
      settings: {},
    },
    discovery,
    device: {
      gate: 'pass',
      checks: [{ id: 'disk-encryption', status: 'pass', detail: 'LUKS', remediation: '' }],
    } as unknown as DiagnosticsInput['device'],
    entitlements: {
      status: 'current',
      ver: 7,
      expiresAt: '2026-11-28T21:00:00Z',
      live: 'connected',
      lastError: `refused: cookie: ${SECRETS.cookie}`,
      models: [
        { id: 'haiku-4', name: 'Haiku 4', status: 'allowed' },
        {
          id: 'mythos-5',
          name: 'Mythos 5',
          status: 'denied',
          reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
          policy: 'ec-2026-06-us-persons',
          message: SECRETS.messageText,
        },
      ],
    } as unknown as DiagnosticsInput['entitlements'],
    session: {
      status: 'signed-in',
      tokenPersistence: 'encrypted',
      account: { name: 'Alice', username: 'alice@lab.example', accessToken: SECRETS.accessToken } as never,
      lastError: `The identity provider said: ${SECRETS.accessToken}`,
    },
    update: {
      policy: 'notify',
      state: 'available',
      version: '0.2.0',
      feedUrl: FEED_WITH_CREDENTIALS,
      message: `Clearance could not check for updates at ${FEED_WITH_CREDENTIALS} (HttpError: 500). It will try again later.`,
      token: SECRETS.refreshToken,
      content: SECRETS.messageText,
    },
    log: ring.recent(),
    now: new Date(Date.UTC(2026, 10, 28, 20, 1, 2)),
  };
}

describe('the diagnostics bundle', () => {
  it('holds version, platform, configuration with sources, discovery, checks, claims, session, update and log', () => {
    const { fileName, content } = buildDiagnostics(plantedInput());
    expect(fileName).toBe('clearance-diagnostics-2026-11-28T20-01-02Z.json');
    const bundle = JSON.parse(content);
    expect(bundle.app.version).toBe('0.1.0');
    expect(bundle.platform.os).toBe('linux');
    expect(bundle.configuration.gatewayUrl.source).toContain('/etc/clearance/policy.json');
    expect(bundle.configuration.managed.entries[0]).toMatchObject({ setting: 'gatewayUrl', status: 'applied' });
    expect(bundle.discovery.issuer).toBe('https://gateway.lab.example');
    expect(bundle.deviceChecks.checks[0].id).toBe('disk-encryption');
    expect(bundle.entitlements.models[1]).toEqual({
      id: 'mythos-5',
      status: 'denied',
      reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
      policy: 'ec-2026-06-us-persons',
    });
    expect(bundle.session).toMatchObject({ status: 'signed-in', account: { username: 'alice@lab.example' } });
    expect(bundle.update).toMatchObject({ policy: 'notify', state: 'available', version: '0.2.0' });
    expect(bundle.recentLog).toHaveLength(8);
    expect(bundle.recentLog[2]).toContain('token refresh failed');
  });

  it.each(Object.entries(SECRETS))('never holds the planted %s', (_kind, secret) => {
    const { content } = buildDiagnostics(plantedInput());
    for (const part of secret.split('\n')) {
      const distinctive = part.replace(/^-----.*-----$/, '').slice(-24);
      if (distinctive) expect(content).not.toContain(distinctive);
    }
  });

  it('says what it removed', () => {
    expect(redactText(`Authorization: Bearer ${SECRETS.bearerOpaque}`)).toBe('Authorization: Bearer [redacted token]');
    expect(redactText(SECRETS.privateKeyPem)).toBe('[redacted private key]');
    expect(redactText(`x ${SECRETS.accessToken} y`)).toBe('x [redacted token] y');
    expect(redactText(`feed ${FEED_WITH_CREDENTIALS}`)).toBe(
      'feed https://[redacted credentials]@updates.lab.example/clearance/',
    );
    expect(redactText('https://updates.lab.example/it@lab.example')).toBe('https://updates.lab.example/it@lab.example');
  });
});
