import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { DiscoveryDocument } from '../shared/discovery';
import { EntitlementDocument, ENTITLEMENTS_AUDIENCE, ENTITLEMENTS_TYP } from '../shared/entitlements';
import { ProblemDetails, PROBLEM_CONTENT_TYPE } from '../shared/problem';
import { DEFAULT_CATALOG_PATH } from './catalog';
import { startGatewayHarness, type GatewayHarness } from './testing/gateway-harness';
import { testPersonas, type TestPersona } from './testing/identity-provider';
import { SseReader, TestDevice } from './testing/device-client';

let harness: GatewayHarness;

beforeAll(async () => {
  harness = await startGatewayHarness();
});
afterAll(async () => {
  await harness?.close();
});

async function verifiedDocument(persona: TestPersona, device?: TestDevice) {
  const client = await harness.signIn(persona, device);
  const { jws } = await client.entitlements();
  const jwks = (await (await fetch(`${harness.gateway.url}/.well-known/jwks.json`)).json()) as Parameters<
    typeof createLocalJWKSet
  >[0];
  const { payload, protectedHeader } = await jwtVerify(jws, createLocalJWKSet(jwks), {
    algorithms: ['ES256'],
    typ: ENTITLEMENTS_TYP,
    issuer: harness.gateway.url,
    audience: ENTITLEMENTS_AUDIENCE,
  });
  return { client, document: EntitlementDocument.parse(payload), protectedHeader };
}

type Expected = Record<string, string>;
const byModel = (document: EntitlementDocument): Expected =>
  Object.fromEntries(document.models.map((m) => [m.id, m.status === 'denied' ? (m.reason as string) : m.status]));

describe('discovery and keys', () => {
  it('serves a discovery document that matches the shared schema', async () => {
    const response = await fetch(`${harness.gateway.url}/.well-known/clearance`);
    expect(response.status).toBe(200);
    const discovery = DiscoveryDocument.parse(await response.json());
    expect(discovery.issuer).toBe(harness.gateway.url);
    expect(discovery.endpoints.chat_completions).toBe(`${harness.gateway.url}/v1/chat/completions`);
    expect(discovery.identity_provider.authority).toBe(harness.idp.issuer);
    expect(discovery.device_policy.required_checks).toContain('disk-encryption');
    // The full device gate is the default: a gateway not told otherwise never opens the app to a failing device.
    expect(discovery.device_policy.scope).toBe('app');
  });

  it('publishes device_policy.scope models when told, and still forbids a compliance-only model to a failing device', async () => {
    const scoped = await startGatewayHarness({ deviceGateScope: 'models' });
    try {
      const discovery = DiscoveryDocument.parse(
        await (await fetch(`${scoped.gateway.url}/.well-known/clearance`)).json(),
      );
      expect(discovery.device_policy.scope).toBe('models');
      const client = await scoped.signIn(testPersonas.usResearcher, undefined, {
        checks: [{ id: 'disk-encryption', status: 'fail', detail: 'not encrypted', remediation: 'encrypt' }],
      });
      const document = EntitlementDocument.parse((await client.entitlements()).claims);
      expect(document.device.compliant).toBe(false);
      expect(byModel(document)['haiku-4']).toBe('allowed');
      expect(byModel(document)['mythos-5']).toBe('DEVICE_NOT_COMPLIANT');
    } finally {
      await scoped.close();
    }
  });

  it('publishes two distinct ES256 keys, one per token kind', async () => {
    const jwks = (await (await fetch(`${harness.gateway.url}/.well-known/jwks.json`)).json()) as {
      keys: { kid: string; alg: string; d?: string }[];
    };
    expect(jwks.keys).toHaveLength(2);
    expect(new Set(jwks.keys.map((k) => k.kid)).size).toBe(2);
    expect(jwks.keys.every((k) => k.alg === 'ES256' && k.d === undefined)).toBe(true);
  });
});

describe('entitlement documents', () => {
  const software = { 'haiku-4': 'allowed', 'tempest-1': 'MODEL_SUSPENDED', 'sentinel-red-team': 'hidden' };
  const cases: [string, TestPersona, Expected][] = [
    [
      'a US-person researcher may use Mythos 5',
      testPersonas.usResearcher,
      {
        ...software,
        'mythos-5': 'allowed',
        'atlas-3-research': 'allowed',
        'orion-2-secure': 'DEVICE_ASSURANCE_TOO_LOW',
      },
    ],
    [
      'a foreign-national researcher is refused Mythos 5 under the directive',
      testPersonas.fnResearcher,
      {
        ...software,
        'mythos-5': 'EXPORT_CONTROL_US_PERSON_REQUIRED',
        'atlas-3-research': 'allowed',
        'orion-2-secure': 'DEVICE_ASSURANCE_TOO_LOW',
      },
    ],
    [
      'a researcher with pending verification is told it is pending',
      testPersonas.pending,
      {
        ...software,
        'mythos-5': 'IDENTITY_VERIFICATION_PENDING',
        'atlas-3-research': 'allowed',
        'orion-2-secure': 'DEVICE_ASSURANCE_TOO_LOW',
      },
    ],
    [
      'a contractor is refused research models and sees the directive first for Mythos 5',
      testPersonas.contractor,
      {
        ...software,
        'mythos-5': 'EXPORT_CONTROL_US_PERSON_REQUIRED',
        'atlas-3-research': 'GROUP_MEMBERSHIP_REQUIRED',
        'orion-2-secure': 'GROUP_MEMBERSHIP_REQUIRED',
      },
    ],
  ];
  for (const [name, persona, expected] of cases) {
    it(`${name} (signature verified with the JWKS)`, async () => {
      const { document, protectedHeader, client } = await verifiedDocument(persona);
      expect(byModel(document)).toEqual(expected);
      expect(document.sub).toBe(persona.id);
      expect(document.cnf.jkt).toBe(client.device.jkt);
      expect(document.device).toEqual({ id: client.device.deviceId, assurance: 'software', compliant: true });
      expect(document.exp - document.iat).toBe(600);
      const jwks = (await (await fetch(`${harness.gateway.url}/.well-known/jwks.json`)).json()) as {
        keys: { kid: string }[];
      };
      expect(jwks.keys.map((k) => k.kid)).toContain(protectedHeader.kid);
    });
  }

  it('cites the directive, its date and the remediation for the export-control denial', async () => {
    const { document } = await verifiedDocument(testPersonas.fnResearcher);
    expect(document.models.find((m) => m.id === 'mythos-5')).toEqual({
      id: 'mythos-5',
      name: 'Mythos 5',
      description: expect.any(String),
      demo: true,
      status: 'denied',
      reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
      title: 'Restricted by export-control directive',
      message: 'Mythos 5 may only be used by verified US persons under directive EC-2026-06.',
      policy: 'ec-2026-06-us-persons',
      since: '2026-06-18T00:00:00Z',
      remediation: {
        label: 'Request US-person verification',
        url: 'https://access.clearance.example/requests/us-person-verification',
      },
      contact: 'export-control@clearance.example',
      rules: [
        {
          policy: 'ec-2026-06-us-persons',
          reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
          title: 'Restricted by export-control directive',
          message: 'Mythos 5 may only be used by verified US persons under directive EC-2026-06.',
          since: '2026-06-18T00:00:00Z',
          remediations: [
            {
              label: 'Request US-person verification',
              url: 'https://access.clearance.example/requests/us-person-verification',
              appliesTo: 'If you are a US person whose status is not on record yet',
            },
            {
              label: 'Ask export control about a licence or exception',
              url: 'https://access.clearance.example/requests/export-licence',
              appliesTo: 'If you are not a US person',
            },
          ],
          contact: 'export-control@clearance.example',
        },
      ],
    });
    const hidden = document.models.find((m) => m.id === 'sentinel-red-team');
    expect(hidden).toEqual({ id: 'sentinel-red-team', name: 'Sentinel Red Team', status: 'hidden' });
  });

  it('lists every rule that blocks a model, most actionable first, each with its own date and remediations', async () => {
    const { document } = await verifiedDocument(testPersonas.contractor);
    const mythos = document.models.find((m) => m.id === 'mythos-5');
    // The picker and the 403 still name the directive; the Why panel lists both rules.
    expect(mythos?.policy).toBe('ec-2026-06-us-persons');
    expect(mythos?.rules?.map((rule) => [rule.policy, rule.reason, rule.since])).toEqual([
      ['model-required-groups', 'GROUP_MEMBERSHIP_REQUIRED', undefined],
      ['ec-2026-06-us-persons', 'EXPORT_CONTROL_US_PERSON_REQUIRED', '2026-06-18T00:00:00Z'],
    ]);
    expect(mythos?.rules?.[0]?.message).toBe('Mythos 5 is limited to members of: research.');
    expect(mythos?.rules?.[0]?.remediations?.map((r) => r.label)).toEqual(['Request group membership']);
    // A rule that states no date has none: never the catalog's.
    const tempest = document.models.find((m) => m.id === 'tempest-1');
    expect(tempest?.status).toBe('denied');
    expect(tempest?.since).toBeUndefined();
    expect(tempest?.rules?.map((rule) => rule.since)).toEqual([undefined]);
  });
  it('names the failing checks when the device is not compliant', async () => {
    const client = await harness.signIn(testPersonas.usResearcher, undefined, {
      checks: [
        { id: 'os-version', status: 'pass', detail: '', remediation: '' },
        { id: 'disk-encryption', status: 'fail', detail: 'not encrypted', remediation: 'encrypt' },
        { id: 'screen-lock', status: 'unknown', detail: '', remediation: '' },
      ],
    });
    const document = EntitlementDocument.parse((await client.entitlements()).claims);
    expect(document.device.compliant).toBe(false);
    const mythos = document.models.find((m) => m.id === 'mythos-5');
    expect(mythos?.reason).toBe('DEVICE_NOT_COMPLIANT');
    expect(mythos?.message).toBe(
      'Mythos 5 requires a compliant device. Failing checks: disk-encryption, screen-lock, firewall.',
    );
    expect(document.models.find((m) => m.id === 'haiku-4')?.status).toBe('allowed');
  });
});

describe('event stream', () => {
  it('resumes after Last-Event-ID with the events the client missed', async () => {
    const client = await harness.signIn(testPersonas.fnResearcher);
    const first = new SseReader(await client.request('GET', '/v1/events'));
    const hello = await first.next();
    expect(hello?.event).toBe('entitlements.changed');
    expect(hello?.id).toMatch(/^[0-9a-f]{8}\.\d+$/);
    const id = harness.gateway.events.publish('fn-researcher', { type: 'entitlements.changed', data: { ver: 99 } });
    expect((await first.next())?.id).toBe(id);

    const resumed = new SseReader(
      await client.request('GET', '/v1/events', { headers: { 'last-event-id': hello!.id! } }),
    );
    const replayed = await resumed.next();
    expect(replayed).toMatchObject({ id, event: 'entitlements.changed', data: '{"ver":99}' });
  });

  it('tells a client resuming from an unknown id to refetch, with the current ver', async () => {
    const client = await harness.signIn(testPersonas.fnResearcher);
    const { claims } = await client.entitlements();
    const reader = new SseReader(
      await client.request('GET', '/v1/events', { headers: { 'last-event-id': 'deadbeef.12' } }),
    );
    const event = await reader.next();
    expect(event?.event).toBe('entitlements.changed');
    expect(JSON.parse(event!.data)).toEqual({ ver: claims.ver });
  });

  it('sends heartbeat comments', async () => {
    const quick = await startGatewayHarness({ heartbeatSeconds: 0.05 });
    try {
      const client = await quick.signIn(testPersonas.contractor);
      const reader = new SseReader(await client.request('GET', '/v1/events'));
      await reader.next();
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(reader.seenComments.filter((c) => c.trim() === 'heartbeat').length).toBeGreaterThanOrEqual(2);
    } finally {
      await quick.close();
    }
  });
});

describe('entitlement versions', () => {
  it('keeps ver while nothing changes and raises it when the device verdict changes', async () => {
    const device = await TestDevice.create();
    const client = await harness.signIn(testPersonas.contractor, device);
    const first = EntitlementDocument.parse((await client.entitlements()).claims);
    const again = EntitlementDocument.parse((await client.entitlements()).claims);
    expect(again.ver).toBe(first.ver);
    await client.signIn(await harness.idp.mint(testPersonas.contractor), {
      checks: [{ id: 'os-version', status: 'fail', detail: 'old', remediation: 'update' }],
    });
    const changed = EntitlementDocument.parse((await client.entitlements()).claims);
    expect(changed.ver).toBeGreaterThan(first.ver);
    expect(changed.device.compliant).toBe(false);
  });
});

describe('admin explain', () => {
  it('traces which rules applied for a user and model', async () => {
    await harness.signIn(testPersonas.contractor);
    const url = `${harness.gateway.url}/v1/admin/explain?user=${encodeURIComponent(testPersonas.contractor.username)}&model=mythos-5`;
    const response = await fetch(url, { headers: { authorization: `Bearer ${harness.gateway.adminToken}` } });
    expect(response.status).toBe(200);
    const trace = (await response.json()) as {
      user: { id: string };
      decision: { effect: string; reason: string; determining: string[] };
      policies: { id: string; applies: boolean }[];
    };
    expect(trace.user.id).toBe('contractor');
    expect(trace.decision).toMatchObject({ effect: 'deny', reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED' });
    expect(
      trace.policies
        .filter((p) => p.applies)
        .map((p) => p.id)
        .sort(),
    ).toEqual(['ec-2026-06-us-persons', 'model-required-groups', 'staff-baseline']);
  });

  it('refuses callers without the admin token', async () => {
    const response = await fetch(`${harness.gateway.url}/v1/admin/explain?user=contractor&model=mythos-5`, {
      headers: { authorization: 'Bearer not-the-token', accept: PROBLEM_CONTENT_TYPE },
    });
    expect(response.status).toBe(401);
    expect(response.headers.get('content-type')).toContain(PROBLEM_CONTENT_TYPE);
    expect(response.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
    expect(ProblemDetails.parse(await response.json()).error).toMatchObject({
      type: 'authentication_error',
      code: 'invalid_token',
      message: expect.stringContaining('admin token'),
    });
  });
});

describe('errors', () => {
  it('answers unknown paths with a problem document that is also an OpenAI error', async () => {
    const response = await fetch(`${harness.gateway.url}/v1/nope`);
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const body = ProblemDetails.parse(await response.json());
    expect(body.title).toBe('Not found');
    expect(body.type).toBe('urn:clearance:problem:not-found');
    expect(body.error).toEqual({
      message: 'No endpoint GET /v1/nope',
      type: 'not_found_error',
      code: 'not_found',
      param: null,
      status: 404,
    });
    expect(body.requestId).toBe(response.headers.get('x-request-id'));
  });

  it('serves application/problem+json to callers that ask for it', async () => {
    const response = await fetch(`${harness.gateway.url}/v1/nope`, { headers: { accept: PROBLEM_CONTENT_TYPE } });
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toContain(PROBLEM_CONTENT_TYPE);
  });

  it('puts a request id on every response, keeping a well-formed one from the caller', async () => {
    const fresh = await fetch(`${harness.gateway.url}/.well-known/clearance`);
    expect(fresh.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{24}$/);
    const kept = await fetch(`${harness.gateway.url}/.well-known/clearance`, {
      headers: { 'x-request-id': 'trace-42.a:b' },
    });
    expect(kept.headers.get('x-request-id')).toBe('trace-42.a:b');
    const replaced = await fetch(`${harness.gateway.url}/.well-known/clearance`, {
      headers: { 'x-request-id': 'no spaces <or> brackets' },
    });
    expect(replaced.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{24}$/);
  });
});

describe('catalog reload', () => {
  it('applies an edited catalog file and notifies connected users', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clearance-catalog-'));
    const path = join(dir, 'catalog.json');
    writeFileSync(path, readFileSync(DEFAULT_CATALOG_PATH));
    const local = await startGatewayHarness({ catalog: path });
    try {
      const client = await local.signIn(testPersonas.contractor);
      const reader = new SseReader(await client.request('GET', '/v1/events'));
      const before = JSON.parse((await reader.next())!.data) as { ver: number };
      const catalog = JSON.parse(readFileSync(path, 'utf8')) as {
        models: { id: string; attributes: { suspended: boolean } }[];
      };
      catalog.models.find((m) => m.id === 'haiku-4')!.attributes.suspended = true;
      writeFileSync(path, JSON.stringify(catalog));
      const changed = await reader.next(3000);
      expect(changed?.event).toBe('entitlements.changed');
      expect((JSON.parse(changed!.data) as { ver: number }).ver).toBeGreaterThan(before.ver);
      const document = EntitlementDocument.parse((await client.entitlements()).claims);
      expect(document.models.find((m) => m.id === 'haiku-4')).toMatchObject({
        status: 'denied',
        reason: 'MODEL_SUSPENDED',
      });
      writeFileSync(path, '{"models": [}');
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(local.logLines.some((line) => line.startsWith('catalog reload rejected'))).toBe(true);
      expect(local.gateway.catalog().get('haiku-4')?.attributes.suspended).toBe(true);
    } finally {
      await local.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
