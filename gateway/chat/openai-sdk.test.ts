import { unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI, { APIError, NotFoundError, PermissionDeniedError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayHarness, type GatewayHarness } from '../testing/gateway-harness';
import { testPersonas } from '../testing/identity-provider';
import { openAiFor } from '../testing/openai-client';
import { DEMO_NOTICE } from './demo-upstream';

const question = [{ role: 'user' as const, content: 'How should I plan an ablation study?' }];

/** The error a promise rejects with (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail');
}

describe('the official OpenAI SDK against the gateway', () => {
  let harness: GatewayHarness;
  let openai: OpenAI;
  beforeAll(async () => {
    harness = await startGatewayHarness({ demoTokensPerSecond: 5000 });
    openai = openAiFor(await harness.signIn(testPersonas.usResearcher));
  });
  afterAll(async () => {
    await harness?.close();
  });

  it('lists the models the user may call and retrieves one', async () => {
    const page = await openai.models.list();
    expect(page.data.map((model) => model.id)).toEqual(['mythos-5', 'haiku-4', 'atlas-3-research']);
    const model = await openai.models.retrieve('mythos-5');
    expect(model).toMatchObject({ id: 'mythos-5', object: 'model', owned_by: 'clearance-demo', status: 'allowed' });
  });

  it('retrieves a model the user may not use with its status and reason', async () => {
    const contractor = openAiFor(await harness.signIn(testPersonas.contractor));
    const model = (await contractor.models.retrieve('mythos-5')) as OpenAI.Models.Model & Record<string, unknown>;
    expect(model).toMatchObject({
      id: 'mythos-5',
      status: 'denied',
      reason: expect.any(String),
      policy: expect.any(String),
    });
  });

  it('answers a hidden model exactly like an unknown one', async () => {
    const hidden = await rejection(openai.models.retrieve('sentinel-red-team'));
    const unknown = await rejection(openai.models.retrieve('no-such-model'));
    expect(hidden).toBeInstanceOf(NotFoundError);
    expect(unknown).toBeInstanceOf(NotFoundError);
    const shape = (error: unknown) => {
      const e = error as NotFoundError;
      return { status: e.status, code: e.code, type: e.type, keys: Object.keys(e.error as object).sort() };
    };
    expect(shape(hidden)).toEqual(shape(unknown));
    expect((hidden as NotFoundError).code).toBe('model_not_found');
    expect((hidden as NotFoundError).requestID).toMatch(/^req_/);
  });

  it('creates a completion', async () => {
    const completion = await openai.chat.completions.create({ model: 'haiku-4', messages: question });
    expect(completion.object).toBe('chat.completion');
    expect(completion.choices[0]?.message.content?.startsWith(DEMO_NOTICE)).toBe(true);
    expect(completion.choices[0]?.finish_reason).toBe('stop');
  });

  it('streams a completion', async () => {
    const stream = await openai.chat.completions.create({ model: 'haiku-4', messages: question, stream: true });
    let text = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toContain('## Haiku 4 on');
    expect(finish).toBe('stop');
  });

  it('streams through the .stream() helper', async () => {
    const runner = openai.chat.completions.stream({ model: 'haiku-4', messages: question });
    let deltas = '';
    runner.on('content', (delta) => {
      deltas += delta;
    });
    const completion = await runner.finalChatCompletion();
    expect(completion.choices[0]?.message.content).toBe(deltas);
    expect(deltas).toContain('## Haiku 4 on');
  });

  it('raises a denial as PermissionDeniedError with the reason as its code', async () => {
    const researcher = openAiFor(await harness.signIn(testPersonas.fnResearcher));
    const error = await rejection(researcher.chat.completions.create({ model: 'mythos-5', messages: question }));
    expect(error).toBeInstanceOf(PermissionDeniedError);
    const denied = error as PermissionDeniedError;
    expect(denied.status).toBe(403);
    expect(denied.code).toBe('EXPORT_CONTROL_US_PERSON_REQUIRED');
    expect(denied.type).toBe('permission_error');
    expect(denied.message).toBe('403 Mythos 5 may only be used by verified US persons under directive EC-2026-06.');
    expect(denied.requestID).toMatch(/^req_/);
    const decisionId = (denied.error as { decisionId?: string }).decisionId;
    expect((await harness.gateway.audit.get(decisionId!))?.data).toMatchObject({ model: 'mythos-5', effect: 'deny' });
  });
});

describe('the official OpenAI SDK when a policy change cuts a stream', () => {
  let harness: GatewayHarness;
  beforeAll(async () => {
    harness = await startGatewayHarness({ demoTokensPerSecond: 15 });
  });
  afterAll(async () => {
    await harness?.close();
  });

  it('raises an APIError carrying status 403, the reason and the cut’s own decision id', async () => {
    const openai = openAiFor(await harness.signIn(testPersonas.usResearcher));
    const { data: stream, response } = await openai.chat.completions
      .create({ model: 'mythos-5', messages: question, stream: true })
      .withResponse();
    const allowedDecision = response.headers.get('x-clearance-decision-id');
    expect(allowedDecision).toMatch(/^dec_/);
    const policy = join(harness.policiesDir, 'emergency.cedar');
    let chunks = 0;
    const error = await rejection(
      (async () => {
        for await (const chunk of stream) {
          chunks++;
          if (chunks === 2) {
            writeFileSync(
              policy,
              `@id("ec-2026-07-mythos-suspension")
@reason("MODEL_SUSPENDED")
@title("Suspended by directive EC-2026-07")
@message("{model} is suspended for everyone under directive EC-2026-07.")
forbid (principal, action == Clearance::Action::"invoke", resource == Clearance::Model::"mythos-5");
`,
            );
          }
          expect(chunk.object).toBe('chat.completion.chunk');
        }
      })(),
    );
    unlinkSync(policy);
    expect(error).toBeInstanceOf(APIError);
    const cut = error as APIError;
    expect(cut.code).toBe('MODEL_SUSPENDED');
    expect(cut.message).toBe('Mythos 5 is suspended for everyone under directive EC-2026-07.');
    const details = cut.error as { status: number; decisionId: string; policy: string; reason?: string };
    expect(details.status).toBe(403);
    expect(details.policy).toBe('ec-2026-07-mythos-suspension');
    expect(details.decisionId).toMatch(/^dec_/);
    expect(details.decisionId).not.toBe(allowedDecision);
    expect((await harness.gateway.audit.get(details.decisionId))?.data).toMatchObject({
      model: 'mythos-5',
      effect: 'deny',
      reason: 'MODEL_SUSPENDED',
    });
  });
});
