import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProblemDetails } from '../shared/problem';
import { startGatewayHarness, type GatewayHarness } from './testing/gateway-harness';
import { testPersonas } from './testing/identity-provider';

let harness: GatewayHarness;
beforeAll(async () => {
  harness = await startGatewayHarness();
});
afterAll(async () => {
  await harness?.close();
});

describe('hidden and unknown models', () => {
  it('answer a chat request with the same status, fields and wording', async () => {
    const client = await harness.signIn(testPersonas.contractor);
    const ask = async (model: string) => {
      const response = await client.request('POST', '/v1/chat/completions', {
        body: { model, messages: [{ role: 'user', content: 'hi' }] },
      });
      const text = await response.text();
      return { status: response.status, text, body: ProblemDetails.parse(JSON.parse(text)) };
    };
    const hidden = await ask('sentinel-red-team');
    const unknown = await ask('sentinel-red-teaz');
    expect(hidden.status).toBe(404);
    expect(unknown.status).toBe(hidden.status);
    expect(Object.keys(unknown.body).sort()).toEqual(Object.keys(hidden.body).sort());
    // Equal once the model name and the per-request ids are blanked out.
    const normalized = (text: string, model: string) =>
      JSON.parse(
        text
          .replaceAll(model, '<model>')
          .replace(/dec_[0-9a-f]+/g, '<decision>')
          .replace(/"requestId":"[^"]*"/g, '"requestId":"<request>"'),
      ) as unknown;
    expect(normalized(unknown.text, 'sentinel-red-teaz')).toEqual(normalized(hidden.text, 'sentinel-red-team'));
    expect(hidden.body.detail).toBe('There is no model "sentinel-red-team".');
    const hiddenId = hidden.body.decisionId;
    const unknownId = unknown.body.decisionId;
    // Both are audited; only the audit says which one was hidden.
    expect((await harness.gateway.audit.get(hiddenId!))?.data).toMatchObject({ effect: 'deny' });
    expect((await harness.gateway.audit.get(unknownId!))?.data).toMatchObject({
      effect: 'deny',
      policy: 'model-not-found',
    });
  });
});

describe('admin explain per device', () => {
  it('reports what each of two devices really gets, and one device when asked', async () => {
    const compliant = await harness.signIn(testPersonas.usResearcher);
    const failing = await harness.signIn(testPersonas.usResearcher, undefined, {
      checks: [{ id: 'disk-encryption', status: 'fail', detail: 'off', remediation: 'encrypt' }],
    });
    const explain = async (device?: string) => {
      const query = `user=${testPersonas.usResearcher.id}&model=mythos-5${device ? `&device=${device}` : ''}`;
      const response = await fetch(`${harness.gateway.url}/v1/admin/explain?${query}`, {
        headers: { authorization: `Bearer ${harness.gateway.adminToken}` },
      });
      expect(response.status).toBe(200);
      return (await response.json()) as {
        device: { jkt: string };
        decision: { effect: string; reason?: string };
        devices: { jkt: string; decision: { effect: string; reason?: string } }[];
      };
    };
    const all = await explain();
    const byKey = new Map(all.devices.map((d) => [d.jkt, d.decision]));
    expect(byKey.get(compliant.device.jkt)).toMatchObject({ effect: 'allow' });
    expect(byKey.get(failing.device.jkt)).toMatchObject({ effect: 'deny', reason: 'DEVICE_NOT_COMPLIANT' });
    // The gateway agrees: the compliant device really gets 200.
    const call = await compliant.request('POST', '/v1/chat/completions', {
      body: { model: 'mythos-5', max_tokens: 2, messages: [{ role: 'user', content: 'hi' }] },
    });
    expect(call.status).toBe(200);
    const one = await explain(compliant.device.jkt);
    expect(one.device.jkt).toBe(compliant.device.jkt);
    expect(one.decision).toMatchObject({ effect: 'allow' });
  });
});
