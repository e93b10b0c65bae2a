import { unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI, { APIError, AuthenticationError, BadRequestError, NotFoundError, PermissionDeniedError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CatalogFile } from '../catalog';
import { startFakeUpstream, writeEvents, type FakeUpstream } from '../testing/fake-upstream';
import { startGatewayHarness, type GatewayHarness } from '../testing/gateway-harness';
import { testPersonas } from '../testing/identity-provider';
import { openAiFor } from '../testing/openai-client';
import { DEMO_NOTICE, demoPromptTokens } from './demo-upstream';

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

  it('gives a refused token an AuthenticationError with the OAuth error code and the WWW-Authenticate header', async () => {
    const forged = new OpenAI({
      baseURL: `${harness.gateway.url}/v1`,
      apiKey: 'not-a-session-token',
      maxRetries: 0,
    });
    const error = await rejection(forged.models.list());
    expect(error).toBeInstanceOf(AuthenticationError);
    const refused = error as AuthenticationError;
    expect(refused.status).toBe(401);
    expect(refused.code).toBe('invalid_token');
    expect(refused.type).toBe('authentication_error');
    expect(refused.message).toMatch(/^401 \S/);
    expect(refused.headers?.get('www-authenticate')).toMatch(/error="invalid_token"/);
    expect(refused.requestID).toMatch(/^req_/);
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

describe('the official OpenAI SDK: usage and parameters on the demo model', () => {
  let harness: GatewayHarness;
  let openai: OpenAI;
  beforeAll(async () => {
    harness = await startGatewayHarness({ demoTokensPerSecond: 5000 });
    openai = openAiFor(await harness.signIn(testPersonas.usResearcher));
  });
  afterAll(async () => {
    await harness?.close();
  });

  async function completionRecord(decisionId: string) {
    const records = await harness.gateway.audit.list({ limit: 10_000 });
    return records.find((record) => record.kind === 'completion' && record.data.decisionId === decisionId);
  }

  it('reports usage counted by the demo model and records it in the audit', async () => {
    const { data: completion, response } = await openai.chat.completions
      .create({ model: 'haiku-4', messages: question })
      .withResponse();
    const promptTokens = demoPromptTokens({ messages: question });
    expect(promptTokens).toBe(7);
    expect(completion.usage?.prompt_tokens).toBe(promptTokens);
    expect(completion.usage?.completion_tokens).toBeGreaterThan(50);
    expect(completion.usage?.total_tokens).toBe(promptTokens + completion.usage!.completion_tokens);
    const decisionId = response.headers.get('x-clearance-decision-id')!;
    const record = await completionRecord(decisionId);
    expect(record?.data).toMatchObject({ outcome: 'complete', usage: completion.usage, model: 'haiku-4' });
    expect(record?.data.requestId).toBe(response.headers.get('x-request-id'));
    expect(await harness.gateway.audit.verifyChain()).toMatchObject({ ok: true });
  });

  it('sends the usage chunk last when the stream asks for it, the same as without streaming', async () => {
    const plain = await openai.chat.completions.create({ model: 'haiku-4', messages: question });
    const stream = await openai.chat.completions.create({
      model: 'haiku-4',
      messages: question,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual(plain.usage);
    expect(chunks.slice(0, -1).every((chunk) => chunk.usage === null)).toBe(true);
    const without = await openai.chat.completions.create({ model: 'haiku-4', messages: question, stream: true });
    for await (const chunk of without) expect(chunk.usage).toBeUndefined();
  });

  it('honours n and stop', async () => {
    const completion = await openai.chat.completions.create({
      model: 'haiku-4',
      messages: question,
      n: 2,
      stop: ['## '],
    });
    expect(completion.choices.map((choice) => choice.index)).toEqual([0, 1]);
    for (const choice of completion.choices) {
      expect(choice.message.content).toBe(`${DEMO_NOTICE}\n\n`);
      expect(choice.finish_reason).toBe('stop');
    }
    const long = await openai.chat.completions.create({ model: 'haiku-4', messages: question, n: 2 });
    expect(long.choices[0]?.message.content).not.toBe(long.choices[1]?.message.content);
    const capped = await openai.chat.completions.create({
      model: 'haiku-4',
      messages: question,
      max_completion_tokens: 5,
    });
    expect(capped.choices[0]?.finish_reason).toBe('length');
    expect(capped.usage?.completion_tokens).toBe(5);
  });

  it('refuses tools with a 400 naming the parameter, before any audit of a completion', async () => {
    const before = (await harness.gateway.audit.list({ limit: 10_000 })).length;
    const error = await rejection(
      openai.chat.completions.create({
        model: 'haiku-4',
        messages: question,
        tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: {} } } }],
      }),
    );
    expect(error).toBeInstanceOf(BadRequestError);
    const refused = error as BadRequestError;
    expect(refused.status).toBe(400);
    expect(refused.param).toBe('tools');
    expect(refused.code).toBe('unsupported_parameter');
    expect(refused.message).toBe('400 Haiku 4 does not support the "tools" parameter; leave it out.');
    const after = await harness.gateway.audit.list({ limit: 10_000 });
    expect(after.slice(before).filter((record) => record.kind === 'completion')).toEqual([]);
  });

  it('refuses response_format, logprobs and unknown parameters the same way', async () => {
    for (const [param, extra] of [
      ['response_format', { response_format: { type: 'json_object' } }],
      ['logprobs', { logprobs: true }],
      ['frobnicate', { frobnicate: 1 }],
    ] as const) {
      const error = await rejection(
        openai.chat.completions.create({ model: 'haiku-4', messages: question, ...extra } as never),
      );
      expect(error).toBeInstanceOf(BadRequestError);
      expect((error as BadRequestError).param).toBe(param);
    }
  });

  it('names the offending parameter of an invalid value', async () => {
    const error = await rejection(openai.chat.completions.create({ model: 'haiku-4', messages: question, n: 0 }));
    expect(error).toBeInstanceOf(BadRequestError);
    expect((error as BadRequestError).param).toBe('n');
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

describe('the official OpenAI SDK through an OpenAI-compatible upstream', () => {
  let harness: GatewayHarness;
  let upstream: FakeUpstream;
  let openai: OpenAI;
  const usage = { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 };
  const open = {
    exportControlled: false,
    suspended: false,
    requiredGroups: [],
    requiresHardware: false,
    requiresCompliantDevice: false,
  };
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
    data: {
      id: 'up-1',
      object: 'chat.completion.chunk',
      created: 1,
      model: 'gpt-x',
      choices: [{ index: 0, delta, finish_reason: finish }],
    },
  });

  beforeAll(async () => {
    upstream = await startFakeUpstream((request, res) => {
      const body = request.body as { tools?: unknown; response_format?: { type: string } };
      const events: { data: unknown }[] = [chunk({ role: 'assistant', content: null })];
      if (body.tools) {
        events.push(
          chunk({
            tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '' } }],
          }),
          chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
          chunk({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }),
          chunk({}, 'tool_calls'),
        );
      } else if (body.response_format?.type === 'json_schema') {
        events.push(chunk({ content: '{"answer":' }), chunk({ content: '42}' }), chunk({}, 'stop'));
      } else {
        events.push(chunk({ content: 'plain' }), chunk({}, 'stop'));
      }
      events.push({
        data: { id: 'up-1', object: 'chat.completion.chunk', created: 1, model: 'gpt-x', choices: [], usage },
      });
      events.push({ data: '[DONE]' });
      return writeEvents(res, events, 0);
    });
    const catalog: CatalogFile = {
      models: [
        {
          id: 'remote-openai',
          name: 'Remote OpenAI',
          upstream: { kind: 'openai', baseUrl: `${upstream.url}/v1`, model: 'gpt-x' },
          attributes: open,
        },
        {
          id: 'remote-narrow',
          name: 'Remote Narrow',
          upstream: { kind: 'openai', baseUrl: `${upstream.url}/v1`, model: 'gpt-y' },
          parameters: ['max_completion_tokens', 'stream_options'],
          attributes: open,
        },
      ],
    };
    harness = await startGatewayHarness({ catalog });
    openai = openAiFor(await harness.signIn(testPersonas.contractor));
  });
  afterAll(async () => {
    await harness?.close();
    await upstream?.close();
  });

  const tools: OpenAI.Chat.ChatCompletionTool[] = [
    {
      type: 'function',
      function: {
        name: 'lookup',
        description: 'Look a city up',
        parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
      },
    },
  ];

  it('passes the OpenAI parameters to the upstream exactly', async () => {
    const params: Omit<OpenAI.Chat.ChatCompletionCreateParamsNonStreaming, 'model' | 'messages'> = {
      tools,
      tool_choice: { type: 'function', function: { name: 'lookup' } },
      parallel_tool_calls: false,
      stop: ['END'],
      seed: 7,
      logprobs: true,
      top_logprobs: 2,
      max_completion_tokens: 64,
      user: 'researcher-42',
      temperature: 0.3,
      presence_penalty: 0.5,
      metadata: { project: 'ablation' },
    };
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
      { role: 'developer', content: 'Be terse.' },
      { role: 'user', content: [{ type: 'text', text: 'Weather?' }] },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'call_0', type: 'function', function: { name: 'lookup', arguments: '{"city":"Oslo"}' } }],
      },
      { role: 'tool', tool_call_id: 'call_0', content: 'cold' },
    ];
    await openai.chat.completions.create({ model: 'remote-openai', messages, ...params });
    expect(upstream.received.at(-1)?.body).toEqual({
      ...params,
      model: 'gpt-x',
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it('relays tool calls and usage, without and with streaming', async () => {
    const completion = await openai.chat.completions.create({
      model: 'remote-openai',
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools,
    });
    expect(completion.choices[0]?.finish_reason).toBe('tool_calls');
    expect(completion.choices[0]?.message.tool_calls).toEqual([
      { id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{"city":"Paris"}' } },
    ]);
    expect(completion.usage).toEqual(usage);

    const runner = openai.chat.completions.stream({
      model: 'remote-openai',
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools,
      stream_options: { include_usage: true },
    });
    const final = await runner.finalChatCompletion();
    expect(final.choices[0]?.message.tool_calls?.[0]).toMatchObject({
      id: 'call_1',
      function: { name: 'lookup', arguments: '{"city":"Paris"}' },
    });
    expect(final.choices[0]?.finish_reason).toBe('tool_calls');
    expect(final.usage).toEqual(usage);
  });

  it('relays structured output the SDK can parse', async () => {
    const completion = await openai.chat.completions.parse({
      model: 'remote-openai',
      messages: [{ role: 'user', content: 'The answer?' }],
      response_format: {
        type: 'json_schema',
        json_schema: {
          name: 'answer',
          strict: true,
          schema: {
            type: 'object',
            properties: { answer: { type: 'number' } },
            required: ['answer'],
            additionalProperties: false,
          },
        },
      },
    });
    expect(completion.choices[0]?.message.parsed).toEqual({ answer: 42 });
  });

  it('refuses a parameter the catalog does not list for the model, without calling the upstream', async () => {
    const calls = upstream.received.length;
    const error = await rejection(
      openai.chat.completions.create({ model: 'remote-narrow', messages: question, seed: 1 }),
    );
    expect(error).toBeInstanceOf(BadRequestError);
    expect((error as BadRequestError).param).toBe('seed');
    expect(upstream.received.length).toBe(calls);
    expect(await openai.models.retrieve('remote-narrow')).toMatchObject({
      parameters: ['stream_options', 'max_completion_tokens'],
    });
  });
});

describe('the official OpenAI SDK through an Anthropic Messages upstream', () => {
  let harness: GatewayHarness;
  let upstream: FakeUpstream;
  let openai: OpenAI;
  const tools: OpenAI.Chat.ChatCompletionTool[] = [
    {
      type: 'function',
      function: {
        name: 'lookup',
        description: 'Look a city up',
        parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
      },
    },
  ];
  const block = (event: string, data: Record<string, unknown>) => ({ event, data: { type: event, ...data } });

  beforeAll(async () => {
    // What the Messages API streams for a text block followed by one tool call, its input in two fragments.
    upstream = await startFakeUpstream((_, res) =>
      writeEvents(
        res,
        [
          block('message_start', {
            message: { id: 'msg_1', role: 'assistant', content: [], usage: { input_tokens: 12, output_tokens: 1 } },
          }),
          block('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
          block('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'Checking.' } }),
          block('content_block_stop', { index: 0 }),
          block('content_block_start', {
            index: 1,
            content_block: { type: 'tool_use', id: 'toolu_1', name: 'lookup', input: {} },
          }),
          block('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: '{"city":' } }),
          block('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: '"Paris"}' } }),
          block('content_block_stop', { index: 1 }),
          block('message_delta', { delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 9 } }),
          block('message_stop', {}),
        ],
        0,
      ),
    );
    const catalog: CatalogFile = {
      models: [
        {
          id: 'remote-claude',
          name: 'Remote Claude',
          upstream: { kind: 'anthropic', baseUrl: upstream.url, model: 'claude-test', apiKeyEnv: 'TEST_ANTHROPIC_KEY' },
          attributes: {
            exportControlled: false,
            suspended: false,
            requiredGroups: [],
            requiresHardware: false,
            requiresCompliantDevice: false,
          },
        },
      ],
    };
    harness = await startGatewayHarness({ catalog, env: { TEST_ANTHROPIC_KEY: 'ak-test' } });
    openai = openAiFor(await harness.signIn(testPersonas.contractor));
  });
  afterAll(async () => {
    await harness?.close();
    await upstream?.close();
  });

  it('maps tools to the Messages API and relays its streamed tool_use as tool_calls', async () => {
    const completion = await openai.chat.completions.create({
      model: 'remote-claude',
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools,
      tool_choice: 'required',
    });
    const sent = upstream.received.at(-1)!;
    expect(sent.url).toBe('/v1/messages');
    expect(sent.headers['x-api-key']).toBe('ak-test');
    expect(sent.body).toMatchObject({
      model: 'claude-test',
      stream: true,
      tools: [
        {
          name: 'lookup',
          description: 'Look a city up',
          input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        },
      ],
      tool_choice: { type: 'any' },
    });
    const choice = completion.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBe('Checking.');
    expect(choice.message.tool_calls).toEqual([
      { id: 'toolu_1', type: 'function', function: { name: 'lookup', arguments: '{"city":"Paris"}' } },
    ]);
    expect(completion.usage).toEqual({ prompt_tokens: 12, completion_tokens: 9, total_tokens: 21 });
  });

  it('streams the same tool call to the SDK’s stream helper, with the usage chunk last', async () => {
    const runner = openai.chat.completions.stream({
      model: 'remote-claude',
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools,
      stream_options: { include_usage: true },
    });
    const final = await runner.finalChatCompletion();
    expect(final.choices[0]?.finish_reason).toBe('tool_calls');
    expect(final.choices[0]?.message.tool_calls?.[0]).toMatchObject({
      id: 'toolu_1',
      type: 'function',
      function: { name: 'lookup', arguments: '{"city":"Paris"}' },
    });
    expect(final.usage).toEqual({ prompt_tokens: 12, completion_tokens: 9, total_tokens: 21 });
  });
});
