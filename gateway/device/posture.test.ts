import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProblemDetails } from '../../shared/problem';
import { startGatewayHarness, type GatewayHarness } from '../testing/gateway-harness';
import { testPersonas } from '../testing/identity-provider';
import { GatewayTestClient, PASSING_CHECKS, TestDevice } from '../testing/device-client';
import { deviceVerdict } from './posture';

let harness: GatewayHarness;
beforeAll(async () => {
  harness = await startGatewayHarness();
});
afterAll(async () => {
  await harness?.close();
});

async function attempt(options: { reuseNonce?: string; signWith?: TestDevice; noProof?: boolean; iat?: number } = {}) {
  const device = await TestDevice.create();
  const idpToken = await harness.idp.mint(testPersonas.usResearcher);
  let nonce = options.reuseNonce;
  if (!nonce) {
    const challenge = await fetch(`${harness.gateway.url}/v1/device/challenge`, {
      method: 'POST',
      headers: { authorization: `Bearer ${idpToken}` },
    });
    nonce = ((await challenge.json()) as { nonce: string }).nonce;
  }
  const url = `${harness.gateway.url}/v1/session`;
  const posture = await device.posture(nonce, options.iat ? { iat: options.iat } : {}, options.signWith?.privateKey);
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${idpToken}`,
      'content-type': 'application/json',
      ...(options.noProof ? {} : { dpop: await device.proof('POST', url) }),
    },
    body: JSON.stringify({ posture }),
  });
  return { response, nonce };
}

describe('device attestation', () => {
  it('issues a DPoP-bound token for a fresh, correctly signed report', async () => {
    const { response } = await attempt();
    expect(response.status).toBe(200);
    const body = (await response.json()) as { token_type: string; expires_in: number; device: { compliant: boolean } };
    expect(body).toMatchObject({ token_type: 'DPoP', expires_in: 300, device: { compliant: true } });
  });

  it('refuses a nonce that was already used', async () => {
    const { nonce } = await attempt();
    const { response } = await attempt({ reuseNonce: nonce });
    expect(response.status).toBe(400);
    expect(ProblemDetails.parse(await response.json()).detail).toMatch(/nonce/);
  });

  it('refuses a report signed by another key than the DPoP proof', async () => {
    const { response } = await attempt({ signWith: await TestDevice.create() });
    expect(response.status).toBe(400);
    expect(ProblemDetails.parse(await response.json()).detail).toMatch(/signed by the DPoP key/);
  });

  it('refuses a session request without a DPoP proof', async () => {
    const { response } = await attempt({ noProof: true });
    expect(response.status).toBe(401);
    expect(ProblemDetails.parse(await response.json()).error?.code).toBe('invalid_dpop_proof');
  });

  it('refuses an old report', async () => {
    const { response } = await attempt({ iat: Math.floor(Date.now() / 1000) - 3600 });
    expect(response.status).toBe(400);
  });
});

describe('the device id a report claims', () => {
  // Found by the attack pass: a software key could call itself "tpm-ek:<hash>", the id the gateway
  // gives only to a TPM-verified device, and IT's enrolment list and explain showed it as such; ids
  // with control characters or 5,000 characters were recorded too.
  it.each([
    ['the TPM-verified namespace', `tpm-ek:${'a'.repeat(64)}`],
    ['control characters', 'laptop\n<script>'],
    ['more than 128 characters', 'x'.repeat(129)],
  ])('refuses %s with 400 and enrols nothing', async (_name, deviceId) => {
    const idpToken = await harness.idp.mint(testPersonas.usResearcher);
    const client = new GatewayTestClient(harness.gateway.url, await TestDevice.create());
    const response = await client.requestSession(idpToken, await client.challenge(idpToken), { deviceId });
    expect(response.status).toBe(400);
    const body = ProblemDetails.parse(await response.json());
    expect(body.detail).toContain('posture report deviceId must be 1-128 printable characters');
    expect(await harness.gateway.devices.listForUser(testPersonas.usResearcher.id)).not.toContainEqual(
      expect.objectContaining({ jkt: client.device.jkt }),
    );
  });
});

describe('deviceVerdict', () => {
  const report = (checks: typeof PASSING_CHECKS) => ({
    nonce: 'n'.repeat(16),
    iat: 0,
    deviceId: 'd',
    assurance: 'software' as const,
    platform: 'linux' as const,
    appVersion: '1',
    checks: [...checks],
  });

  it('counts unknown and missing required checks as failed', () => {
    const checks = PASSING_CHECKS.map((c) => (c.id === 'firewall' ? { ...c, status: 'unknown' as const } : c)).filter(
      (c) => c.id !== 'screen-lock',
    );
    const verdict = deviceVerdict(report(checks), ['os-version', 'screen-lock', 'firewall'], 'software');
    expect(verdict.compliant).toBe(false);
    expect(verdict.failedChecks).toEqual(['screen-lock', 'firewall']);
  });

  it('ignores failing checks that are not required', () => {
    const checks = PASSING_CHECKS.map((c) => (c.id === 'managed' ? { ...c, status: 'fail' as const } : c));
    expect(deviceVerdict(report(checks), ['os-version'], 'software').compliant).toBe(true);
  });

  it('carries the assurance the gateway verified, not the one the report claims', () => {
    const claimed = { ...report([...PASSING_CHECKS]), assurance: 'hardware' as const };
    expect(deviceVerdict(claimed, ['os-version'], 'software').assurance).toBe('software');
  });
});

describe('strict posture input', () => {
  const signInWith = (checks: unknown[]) =>
    harness.signIn(testPersonas.usResearcher, undefined, { checks: checks as never });

  it('answers a report with the same check as fail and then pass with 400, and enrols nothing', async () => {
    const device = await TestDevice.create();
    const attempt = harness.signIn(testPersonas.usResearcher, device, {
      checks: [
        ...PASSING_CHECKS.filter((c) => c.id !== 'disk-encryption'),
        { id: 'disk-encryption', status: 'fail', detail: 'off', remediation: 'encrypt' },
        { id: 'disk-encryption', status: 'pass', detail: 'on', remediation: '' },
      ],
    });
    await expect(attempt).rejects.toThrow(
      /session failed: 400 .*posture report is contradictory: check \\"disk-encryption\\" is reported both fail and pass/,
    );
    expect(await harness.gateway.devices.find(testPersonas.usResearcher.id, device.jkt)).toBeUndefined();
  });

  it('refuses a check reported twice even when both agree', async () => {
    await expect(signInWith([...PASSING_CHECKS, PASSING_CHECKS[0]])).rejects.toThrow(
      /session failed: 400 .*reported twice/,
    );
  });

  it('refuses an unknown check id', async () => {
    await expect(
      signInWith([...PASSING_CHECKS, { id: 'vibes', status: 'pass', detail: '', remediation: '' }]),
    ).rejects.toThrow(/session failed: 400 .*unknown check \\"vibes\\"/);
  });
});
