import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { ProblemDetails } from '../../shared/problem';
import { startGatewayHarness, type GatewayHarness } from '../testing/gateway-harness';
import { testPersonas } from '../testing/identity-provider';
import { SseReader } from '../testing/device-client';

const chatBody = (model: string) => ({
  model,
  stream: true,
  messages: [{ role: 'user', content: 'How should I plan an ablation study?' }],
});

describe('device revocation during a completion', () => {
  let harness: GatewayHarness;
  beforeAll(async () => {
    // Slow enough that the reply is still streaming when IT revokes the device.
    harness = await startGatewayHarness({ demoTokensPerSecond: 40 });
  });
  afterAll(async () => {
    await harness?.close();
  });

  it('cuts the running stream with the session-revoked problem, sends no [DONE], and refuses the next request', async () => {
    const victim = await harness.signIn(testPersonas.usResearcher);
    const bystander = await harness.signIn(testPersonas.usResearcher);
    const userId = decodeJwt(victim.accessToken!).sub!;

    const response = await victim.request('POST', '/v1/chat/completions', { body: chatBody('haiku-4') });
    expect(response.status).toBe(200);
    const stream = new SseReader(response);
    expect((await stream.next())?.data).toContain('"role":"assistant"');
    const other = new SseReader(await bystander.request('POST', '/v1/chat/completions', { body: chatBody('haiku-4') }));
    expect((await other.next())?.data).toContain('"role":"assistant"');

    expect(await harness.gateway.revokeDevice(userId, victim.device.jkt)).toBe(true);

    let cut;
    for (;;) {
      const event = await stream.next(5000);
      if (!event) throw new Error('the stream ended without an error event: the revocation did not cut it');
      expect(event.data).not.toBe('[DONE]');
      if (event.event === 'error') {
        cut = JSON.parse(event.data) as ProblemDetails;
        break;
      }
    }
    expect(cut).toMatchObject({
      type: 'urn:clearance:problem:session-revoked',
      status: 401,
    });
    // Nothing more after the cut: no content, no [DONE].
    expect(await stream.next(5000)).toBeUndefined();

    // The other device of the same user keeps streaming to its end.
    let sawDone = false;
    for (;;) {
      const event = await other.next(10_000);
      if (!event) break;
      expect(event.event).not.toBe('error');
      if (event.data === '[DONE]') sawDone = true;
    }
    expect(sawDone).toBe(true);

    // The revoked key cannot start another completion.
    const after = await victim.request('POST', '/v1/chat/completions', { body: chatBody('haiku-4') });
    expect(after.status).toBe(401);
    expect(after.headers.get('www-authenticate')).toMatch(/^DPoP error="invalid_token"/);
    expect(JSON.stringify(await after.json())).toContain('The device key of this token has been revoked');
  });
});
