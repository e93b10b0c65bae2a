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
