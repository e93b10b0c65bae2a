import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Catalog, DEFAULT_CATALOG_PATH } from '../catalog';
import { anthropicEvents, startFakeUpstream, writeEvents, type FakeUpstream } from '../testing/fake-upstream';
import { ANTHROPIC_VERSION, AnthropicUpstream, anthropicParameters, toAnthropicMessages } from './anthropic-upstream';
import { createUpstreamDispatcher, type UpstreamEvent } from './upstream';

const model = Catalog.fromFile(DEFAULT_CATALOG_PATH).get('haiku-4')!;
const dispatcher = createUpstreamDispatcher();
const timeouts = { timeouts: { responseMs: 500, idleMs: 500 }, maxEventBytes: 1024 * 1024, dispatcher };
afterAll(async () => {
  await dispatcher.destroy();
});
let upstream: FakeUpstream | undefined;
afterEach(async () => {
  await upstream?.close();
  upstream = undefined;
});

async function collect(events: AsyncIterable<UpstreamEvent>): Promise<UpstreamEvent[]> {
  const all: UpstreamEvent[] = [];
  for await (const event of events) all.push(event);
  return all;
}

describe('AnthropicUpstream', () => {
  it('translates the request and streams text deltas with the mapped stop reason', async () => {
    upstream = await startFakeUpstream((_, res) => writeEvents(res, anthropicEvents(['Bon', 'jour'], 'max_tokens')));
    const adapter = new AnthropicUpstream(
      { baseUrl: upstream.url, model: 'claude-test', apiKey: 'ak-test', maxTokens: 1024 },
      timeouts,
    );
    const events = await collect(
      adapter.stream(
        {
          model,
          messages: [
            { role: 'system', content: 'Be brief.' },
            { role: 'user', content: 'Say hello' },
            { role: 'user', content: 'in French' },
          ],
          params: { temperature: 1.5, stop: 'END', user: 'u-1' },
        },
        new AbortController().signal,
      ),
    );
    expect(events).toEqual([
      { type: 'choices', choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] },
      { type: 'choices', choices: [{ index: 0, delta: { content: 'Bon' }, finish_reason: null }] },
      { type: 'choices', choices: [{ index: 0, delta: { content: 'jour' }, finish_reason: null }] },
      { type: 'choices', choices: [{ index: 0, delta: {}, finish_reason: 'length' }] },
      { type: 'usage', usage: { prompt_tokens: 0, completion_tokens: 3, total_tokens: 3 } },
    ]);
    const received = upstream.received[0]!;
    expect(received.url).toBe('/v1/messages');
    expect(received.headers['x-api-key']).toBe('ak-test');
    expect(received.headers['anthropic-version']).toBe(ANTHROPIC_VERSION);
    expect(received.body).toEqual({
      model: 'claude-test',
      max_tokens: 1024,
      system: 'Be brief.',
      messages: [{ role: 'user', content: 'Say hello\n\nin French' }],
      temperature: 1,
      stop_sequences: ['END'],
      metadata: { user_id: 'u-1' },
      stream: true,
    });
  });

  it('turns an error event into a 502', async () => {
    upstream = await startFakeUpstream((_, res) =>
      writeEvents(res, [
        { event: 'error', data: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } } },
      ]),
    );
    const adapter = new AnthropicUpstream({ baseUrl: upstream.url, model: 'm', apiKey: 'k', maxTokens: 10 }, timeouts);
    const failure = await collect(
      adapter.stream({ model, messages: [{ role: 'user', content: 'hi' }], params: {} }, new AbortController().signal),
    ).catch((e: unknown) => e);
    expect(failure).toMatchObject({ status: 502, logDetail: expect.stringContaining('overloaded: Overloaded') });
  });

  it('starts the conversation with a user turn as the API requires', () => {
    expect(
      toAnthropicMessages([
        { role: 'assistant', content: 'Hi' },
        { role: 'user', content: 'Yo' },
      ]).messages,
    ).toEqual([
      { role: 'user', content: '(conversation continues)' },
      { role: 'assistant', content: 'Hi' },
      { role: 'user', content: 'Yo' },
    ]);
  });
});

describe('OpenAI tools on the Messages API', () => {
  it('maps tools, tool_choice, parallel_tool_calls, stop and user to their equivalents', () => {
    expect(
      anthropicParameters(
        {
          max_completion_tokens: 64,
          stop: ['END'],
          user: 'u-7',
          tools: [
            { type: 'function', function: { name: 'lookup', description: 'Find', parameters: { type: 'object' } } },
          ],
          tool_choice: 'required',
          parallel_tool_calls: false,
        },
        1024,
      ),
    ).toEqual({
      max_tokens: 64,
      stop_sequences: ['END'],
      metadata: { user_id: 'u-7' },
      tools: [{ name: 'lookup', description: 'Find', input_schema: { type: 'object' } }],
      tool_choice: { type: 'any', disable_parallel_tool_use: true },
    });
  });

  it('turns tool calls and tool results into tool_use and tool_result blocks', () => {
    expect(
      toAnthropicMessages([
        { role: 'user', content: 'Weather in Oslo?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{"city":"Oslo"}' } }],
        },
        { role: 'tool', tool_call_id: 'call_1', content: 'cold' },
      ]).messages,
    ).toEqual([
      { role: 'user', content: 'Weather in Oslo?' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'call_1', name: 'lookup', input: { city: 'Oslo' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_1', content: 'cold' }] },
    ]);
  });
});
