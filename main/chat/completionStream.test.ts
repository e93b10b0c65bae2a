import { describe, expect, it } from 'vitest';
import { readCompletionStream } from './completionStream';

function streamOf(text: string, pieceBytes: number): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, at + pieceBytes));
      at += pieceBytes;
    },
  });
}

const chunk = (content: string) => `data: ${JSON.stringify({ choices: [{ delta: { content } }] })}\n\n`;

describe('readCompletionStream', () => {
  it('delivers every delta in order when the bytes arrive one at a time, multi-byte characters included', async () => {
    const received: string[] = [];
    const end = await readCompletionStream(
      streamOf(`: keep-alive\n\n${chunk('Grüße ')}${chunk('— 東京 ')}${chunk('🙂')}data: [DONE]\n\n`, 1),
      (delta) => received.push(delta),
    );
    expect(end).toEqual({ status: 'complete' });
    expect(received).toEqual(['Grüße ', '— 東京 ', '🙂']);
  });

  it('ignores role-only and unparseable chunks and ends at a finish reason without [DONE]', async () => {
    const received: string[] = [];
    const roleOnly = `data: ${JSON.stringify({ choices: [{ delta: { role: 'assistant' } }] })}\n\n`;
    const finish = `data: ${JSON.stringify({ choices: [{ delta: {}, finish_reason: 'stop' }] })}\n\n`;
    const end = await readCompletionStream(streamOf(`${roleOnly}data: {oops\n\n${chunk('ok')}${finish}`, 7), (d) =>
      received.push(d),
    );
    expect(end).toEqual({ status: 'complete' });
    expect(received).toEqual(['ok']);
  });

  it('stops at an error event and ignores anything after it', async () => {
    const received: string[] = [];
    const problem = { title: 'Model suspended', status: 403, reason: 'MODEL_SUSPENDED', decisionId: 'd-9' };
    const end = await readCompletionStream(
      streamOf(`${chunk('a')}event: error\ndata: ${JSON.stringify(problem)}\n\n${chunk('b')}`, 5),
      (d) => received.push(d),
    );
    expect(received).toEqual(['a']);
    expect(end).toEqual({
      status: 'error',
      error: { code: 'MODEL_DENIED', reason: 'MODEL_SUSPENDED', message: 'Model suspended' },
      decisionId: 'd-9',
    });
  });

  it('reads a plain OpenAI error without a reason as a gateway failure', async () => {
    const end = await readCompletionStream(
      streamOf(`data: ${JSON.stringify({ error: { message: 'upstream overloaded', type: 'server_error' } })}\n\n`, 64),
      () => {},
    );
    expect(end).toEqual({ status: 'error', error: { code: 'GATEWAY_UNAVAILABLE', message: 'upstream overloaded' } });
  });
});

describe('readCompletionStream usage', () => {
  const finish = `data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], usage: null })}\n\n`;
  const usage = (value: unknown) => `data: ${JSON.stringify({ choices: [], usage: value })}\n\n`;

  it('reports the usage chunk that follows the finish reason', async () => {
    const end = await readCompletionStream(
      streamOf(
        `${chunk('hi')}${finish}${usage({ prompt_tokens: 7, completion_tokens: 2, total_tokens: 9 })}data: [DONE]\n\n`,
        5,
      ),
      () => {},
    );
    expect(end).toEqual({ status: 'complete', usage: { promptTokens: 7, completionTokens: 2, totalTokens: 9 } });
  });

  it('ignores a usage object that is not three whole counts', async () => {
    const end = await readCompletionStream(
      streamOf(
        `${chunk('hi')}${finish}${usage({ prompt_tokens: 7, completion_tokens: -2, total_tokens: 5 })}data: [DONE]\n\n`,
        64,
      ),
      () => {},
    );
    expect(end).toEqual({ status: 'complete' });
  });
});
