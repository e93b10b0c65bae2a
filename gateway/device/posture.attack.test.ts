import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostureReportClaims } from '../../shared/device';
import { ProblemDetails } from '../../shared/problem';
import { GatewayTestClient, PASSING_CHECKS, TestDevice } from '../testing/device-client';
import { startGatewayHarness, type GatewayHarness } from '../testing/gateway-harness';
import { testPersonas } from '../testing/identity-provider';

/**
 * Overlong free text in a posture report: the report is the attacker's own, but what it says is kept in
 * the device registry and written to the audit log on every session, and shown to IT. Each field is
 * bounded; past it the session is a 400 `Invalid posture report` and nothing is recorded.
 */
describe('a posture report with overlong free text', () => {
  let harness: GatewayHarness;
  beforeAll(async () => {
    harness = await startGatewayHarness();
  });
  afterAll(async () => harness.close());

  const persona = testPersonas.contractor;
  const cases: Array<[string, Partial<PostureReportClaims>]> = [
    ['appVersion', { appVersion: `1.0.0-${'x'.repeat(10_000)}` }],
    [
      'checks.0.detail',
      { checks: [{ ...PASSING_CHECKS[0]!, detail: 'd'.repeat(20_000) }, ...PASSING_CHECKS.slice(1)] },
    ],
    [
      'checks.1.remediation',
      {
        checks: [
          PASSING_CHECKS[0]!,
          { ...PASSING_CHECKS[1]!, status: 'fail' as const, remediation: 'r'.repeat(20_000) },
          ...PASSING_CHECKS.slice(2),
        ],
      },
    ],
  ];

  it.each(cases)('%s is refused with a 400 and nothing is recorded', async (field, posture) => {
    const before = (await harness.gateway.audit.list({ limit: 10_000 })).filter(
      (record) => record.kind === 'session' && record.subject === persona.id && record.data.effect !== 'deny',
    ).length;
    const client = new GatewayTestClient(harness.gateway.url, await TestDevice.create());
    const token = await harness.idp.mint(persona);
    const response = await client.requestSession(token, await client.challenge(token), posture);
    expect(response.status).toBe(400);
    const body = ProblemDetails.parse(await response.json());
    expect(body).toMatchObject({ type: 'urn:clearance:problem:bad-request', title: 'Invalid posture report' });
    expect(body.detail).toContain(field);
    expect(await harness.gateway.devices.listForUser(persona.id)).toEqual([]);
    const after = (await harness.gateway.audit.list({ limit: 10_000 })).filter(
      (record) => record.kind === 'session' && record.subject === persona.id && record.data.effect !== 'deny',
    ).length;
    expect(after).toBe(before);
  });

  it('a report with ordinary text still opens a session', async () => {
    const client = new GatewayTestClient(harness.gateway.url, await TestDevice.create());
    const token = await harness.idp.mint(testPersonas.usResearcher);
    const response = await client.requestSession(token, await client.challenge(token), {
      appVersion: '1.4.2-beta.3+build.20261206',
    });
    expect(response.status).toBe(200);
  });
});
