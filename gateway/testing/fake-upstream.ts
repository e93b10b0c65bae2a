import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/** A request the fake upstream received. */
export interface ReceivedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: unknown;
}

/** A loopback HTTP server standing in for a model provider. */
export interface FakeUpstream {
  readonly url: string;
  readonly received: readonly ReceivedRequest[];
  close(): Promise<void>;
}

/**
 * Starts a fake provider; `respond` writes the answer (SSE, an error, or nothing at all).
 */
export async function startFakeUpstream(
  respond: (request: ReceivedRequest, response: ServerResponse) => void | Promise<void>,
): Promise<FakeUpstream> {
  const received: ReceivedRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON: keep the text
      }
      const request = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      received.push(request);
      void respond(request, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Writes Server-Sent Events with a short pause between them. */
export async function writeEvents(
  response: ServerResponse,
  events: readonly { event?: string; data: unknown }[],
  pauseMs = 2,
): Promise<void> {
  response.writeHead(200, { 'content-type': 'text/event-stream' });
  for (const event of events) {
    const data = typeof event.data === 'string' ? event.data : JSON.stringify(event.data);
    response.write(`${event.event ? `event: ${event.event}\n` : ''}data: ${data}\n\n`);
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
  response.end();
}

/** OpenAI chat completion chunks for `pieces`, ending with a finish reason and `[DONE]`. */
export function openAiChunks(pieces: readonly string[], finishReason = 'stop'): { data: unknown }[] {
  const chunk = (delta: Record<string, string>, finish: string | null) => ({
    data: { id: 'x', object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] },
  });
  return [
    chunk({ role: 'assistant' }, null),
    ...pieces.map((p) => chunk({ content: p }, null)),
    chunk({}, finishReason),
    { data: '[DONE]' },
  ];
}

/** Anthropic Messages API stream events for `pieces`. */
export function anthropicEvents(
  pieces: readonly string[],
  stopReason = 'end_turn',
): { event: string; data: unknown }[] {
  return [
    {
      event: 'message_start',
      data: { type: 'message_start', message: { id: 'msg_1', role: 'assistant', content: [] } },
    },
    {
      event: 'content_block_start',
      data: { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
    },
    { event: 'ping', data: { type: 'ping' } },
    ...pieces.map((text) => ({
      event: 'content_block_delta',
      data: { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } },
    })),
    { event: 'content_block_stop', data: { type: 'content_block_stop', index: 0 } },
    {
      event: 'message_delta',
      data: { type: 'message_delta', delta: { stop_reason: stopReason }, usage: { output_tokens: 3 } },
    },
    { event: 'message_stop', data: { type: 'message_stop' } },
  ];
}
