import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { IpcEventPayload } from '../../shared/ipc';
import { PROBLEM_CONTENT_TYPE, type ProblemDetails } from '../../shared/problem';
import type { ConversationStore } from '../conversations/ConversationStore';
import { StoreFixture } from '../conversations/testing/fixture';
import { writeFileAtomic } from '../storage/atomicFile';
import { ChatService, type ChatEventName, type ChatEventSink, type ModelCheck } from './ChatService';
import { chunk, FakeGateway, pause, startStream, type ReceivedRequest } from './testing/fakeGateway';

type Recorded = { [E in ChatEventName]: { readonly name: E; readonly payload: IpcEventPayload<E> } }[ChatEventName];

const exportProblem: ProblemDetails = {
  type: 'https://clearance.example/problems/model-denied',
  title: 'Restricted by export-control directive',
  status: 403,
  reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
  policy: 'ec-2026-06-us-persons',
  decisionId: 'dec-cut-1',
  message: 'Mythos 5 may only be used by verified US persons under directive EC-2026-06.',
};

let fixture: StoreFixture;
let gateway: FakeGateway;
let store: ConversationStore;
let events: Recorded[];
let forbidden: number;
let denied: Set<string>;
let chat: ChatService;

beforeEach(async () => {
  fixture = await StoreFixture.create();
  gateway = await FakeGateway.start();
  store = fixture.store({ flushIntervalMs: 20 });
  events = [];
  forbidden = 0;
  denied = new Set();
  const emit: ChatEventSink = (name, payload) => events.push({ name, payload } as Recorded);
  const checkModel = (model: string): ModelCheck =>
    denied.has(model)
      ? {
          allowed: false,
          reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
          title: exportProblem.title,
          message: exportProblem.message ?? '',
        }
      : { allowed: true };
  chat = new ChatService({
    store,
    fetch: gateway.fetch,
    checkModel,
    onForbidden: () => forbidden++,
    emit,
    clock: fixture.clock,
    log: () => {},
  });
});

afterEach(async () => {
  await chat.dispose();
  await gateway.close();
  await fixture.dispose();
});

function deltas(messageId: string): string[] {
  return events.flatMap((e) => (e.name === 'chatDelta' && e.payload.messageId === messageId ? [e.payload.delta] : []));
}

function doneEvents(): IpcEventPayload<'chatDone'>[] {
  return events.flatMap((e) => (e.name === 'chatDone' ? [e.payload] : []));
}

function lastUserText(request: ReceivedRequest | undefined): string {
  const body = request?.body as { messages: { role: string; content: string }[] };
  return body.messages.filter((m) => m.role === 'user').at(-1)?.content ?? '';
}

async function waitUntil(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await pause(10);
  if (!condition()) throw new Error(`timed out waiting for ${what}`);
}

/** Streams `Echo: <last user message>` in three chunks, then [DONE]. */
function echoScenario(decisionId = 'dec-1') {
  gateway.scenario = async (res, _closed, request) => {
    startStream(res, decisionId);
    const text = lastUserText(request);
    for (const piece of ['Echo', ': ', text]) {
      res.write(chunk(piece));
      await pause(2);
    }
    res.write(chunk('', 'stop'));
    const { stream_options: options } = request.body as { stream_options?: { include_usage?: boolean } };
    if (options?.include_usage) {
      res.write(
        `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 } })}\n\n`,
      );
    }
    res.end('data: [DONE]\n\n');
  };
}

describe('ChatService streaming', () => {
  it('streams deltas in order, saves the reply, and records the decision id on both messages', async () => {
    echoScenario('dec-42');
    const sent = await chat.send({ model: 'haiku-4', content: 'How do attention sinks form?\nMore detail.' });
    await chat.settled(sent.conversationId);

    expect(deltas(sent.messageId)).toEqual(['Echo', ': ', 'How do attention sinks form?\nMore detail.']);
    expect(doneEvents()).toEqual([
      { conversationId: sent.conversationId, messageId: sent.messageId, status: 'complete' },
    ]);
    const request = gateway.requests[0];
    expect(request?.path).toBe('/v1/chat/completions');
    expect(request?.body).toEqual({
      model: 'haiku-4',
      messages: [{ role: 'user', content: 'How do attention sinks form?\nMore detail.' }],
      stream: true,
      stream_options: { include_usage: true },
    });

    await store.close();
    const saved = await fixture.store().get(sent.conversationId);
    expect(saved.title).toBe('How do attention sinks form?');
    expect(saved.messages).toMatchObject([
      { role: 'user', model: 'haiku-4', decisionId: 'dec-42', status: 'complete' },
      {
        id: sent.messageId,
        role: 'assistant',
        model: 'haiku-4',
        decisionId: 'dec-42',
        status: 'complete',
        content: 'Echo: How do attention sinks form?\nMore detail.',
        usage: { promptTokens: 9, completionTokens: 3, totalTokens: 12 },
      },
    ]);
    expect(events.some((e) => e.name === 'conversationsChanged' && e.payload.ids.includes(sent.conversationId))).toBe(
      true,
    );
  });

  it('sends the earlier exchange as context on the next message', async () => {
    echoScenario();
    const first = await chat.send({ model: 'haiku-4', content: 'one' });
    await chat.settled(first.conversationId);
    const second = await chat.send({ conversationId: first.conversationId, model: 'haiku-4', content: 'two' });
    await chat.settled(second.conversationId);
    expect(second.conversationId).toBe(first.conversationId);
    expect((gateway.requests[1]?.body as { messages: unknown }).messages).toEqual([
      { role: 'user', content: 'one' },
      { role: 'assistant', content: 'Echo: one' },
      { role: 'user', content: 'two' },
    ]);
  });

  it('stop aborts the upstream request and keeps the partial reply as stopped', async () => {
    let serverSawClose = false;
    gateway.scenario = async (res, closed) => {
      startStream(res);
      let open = true;
      void closed.then(() => {
        open = false;
        serverSawClose = true;
      });
      for (let i = 0; open && i < 1000; i++) {
        res.write(chunk(`w${i} `));
        await pause(5);
      }
      if (open) res.end('data: [DONE]\n\n');
    };
    const sent = await chat.send({ model: 'haiku-4', content: 'Write forever' });
    await waitUntil(() => deltas(sent.messageId).length >= 3, 'three deltas');
    expect(chat.isStreaming(sent.conversationId)).toBe(true);

    expect(await chat.stop(sent.conversationId)).toEqual({ stopped: true });
    await waitUntil(() => serverSawClose, 'the server to see the connection close');
    expect(gateway.closedByClient).toBe(1);
    expect(chat.isStreaming(sent.conversationId)).toBe(false);
    expect(doneEvents()).toEqual([
      { conversationId: sent.conversationId, messageId: sent.messageId, status: 'stopped' },
    ]);
    const received = deltas(sent.messageId).join('');
    const saved = (await fixture.store().get(sent.conversationId)).messages[1];
    expect(saved).toMatchObject({ status: 'stopped', content: received });
    expect(received).toMatch(/^w0 w1 w2 /);
    expect(await chat.stop(sent.conversationId)).toEqual({ stopped: false });
  });

  it('keeps the partial reply with a readable error when the gateway dies mid-stream', async () => {
    gateway.scenario = async (res) => {
      startStream(res);
      res.write(chunk('Half of '));
      res.write(chunk('an answer'));
      await pause(30);
      res.socket?.destroy();
    };
    const sent = await chat.send({ model: 'haiku-4', content: 'Explain' });
    await chat.settled(sent.conversationId);

    const done = doneEvents()[0];
    expect(done?.status).toBe('error');
    expect(done?.error?.code).toBe('GATEWAY_UNAVAILABLE');
    expect(done?.error?.message).toBe('Clearance lost its connection to the gateway. Try again once it is back.');
    // The network's own words (a socket error, an address) stay out of the sentence, in the details.
    expect(done?.error?.detail).toMatch(/.+/);
    await store.close();
    const saved = (await fixture.store().get(sent.conversationId)).messages[1];
    expect(saved).toMatchObject({ status: 'error', content: 'Half of an answer', error: done?.error });
  });

  it('ends a reply as failed, not complete, when the disk fills up mid-reply, keeping the text so far', async () => {
    await chat.dispose();
    let diskFull = false;
    let writesWhileFull = 0;
    let replyId = '';
    const fullDisk = fixture.store({
      flushIntervalMs: 5,
      writeFile: (path, data) => {
        if (diskFull) {
          writesWhileFull++;
          return Promise.reject(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }));
        }
        return writeFileAtomic(path, data);
      },
    });
    chat = new ChatService({
      store: fullDisk,
      fetch: gateway.fetch,
      checkModel: () => ({ allowed: true }),
      onForbidden: () => {},
      emit: (name, payload) => events.push({ name, payload } as Recorded),
      clock: fixture.clock,
      log: () => {},
    });
    gateway.scenario = async (res) => {
      startStream(res);
      res.write(chunk('Saved part. '));
      // Once the first part has arrived and been written, the disk fills up.
      await waitUntil(() => deltas(replyId).join('') === 'Saved part. ', 'the first part');
      await fullDisk.flush();
      diskFull = true;
      res.write(chunk('Unsaved part.'));
      await pause(30);
      res.write(chunk('', 'stop'));
      res.end('data: [DONE]\n\n');
    };
    const sent = await chat.send({ model: 'haiku-4', content: 'Explain' });
    replyId = sent.messageId;
    await chat.settled(sent.conversationId);

    const done = doneEvents().at(-1);
    expect(done?.status).toBe('error');
    expect(done?.error?.code).toBe('SAVE_FAILED');
    expect(done?.error?.message).toMatch(/cannot save.*the disk is full/);
    expect(writesWhileFull).toBeGreaterThan(0);
    // What was received is still shown, marked as failed.
    const shown = (await fullDisk.get(sent.conversationId)).messages[1];
    expect(shown).toMatchObject({ content: 'Saved part. Unsaved part.', status: 'error', error: done?.error });
    // On disk: the part written before the disk filled, never marked complete.
    const onDisk = (await fixture.store().get(sent.conversationId)).messages[1];
    expect(onDisk?.content).toBe('Saved part. ');
    expect(onDisk?.status).not.toBe('complete');
  });

  it('refuses to send, keeping nothing, when the question cannot be saved', async () => {
    await chat.dispose();
    let diskFull = false;
    const fullDisk = fixture.store({
      writeFile: (path, data) =>
        diskFull
          ? Promise.reject(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }))
          : writeFileAtomic(path, data),
    });
    chat = new ChatService({
      store: fullDisk,
      fetch: gateway.fetch,
      checkModel: () => ({ allowed: true }),
      onForbidden: () => {},
      emit: () => {},
      clock: fixture.clock,
      log: () => {},
    });
    echoScenario();
    const first = await chat.send({ model: 'haiku-4', content: 'One' });
    await chat.settled(first.conversationId);
    diskFull = true;
    await expect(
      chat.send({ conversationId: first.conversationId, model: 'haiku-4', content: 'Two' }),
    ).rejects.toMatchObject({ error: { code: 'SAVE_FAILED' } });
    expect(gateway.requests).toHaveLength(1);
    diskFull = false;
    await fullDisk.rename(first.conversationId, 'Renamed once the disk has room');
    await fullDisk.close();
    const reopened = await fixture.store().get(first.conversationId);
    expect(reopened.messages.map((m) => m.content)).toEqual(['One', 'Echo: One']);
  });

  it('reports a stream that ends without finishing as cut short, keeping the text', async () => {
    gateway.scenario = (res) => {
      startStream(res);
      res.end(chunk('Only this'));
    };
    const sent = await chat.send({ model: 'haiku-4', content: 'Explain' });
    await chat.settled(sent.conversationId);
    expect(doneEvents()[0]?.error?.message).toMatch(/ended the reply before it was finished/);
    expect((await store.get(sent.conversationId)).messages[1]?.content).toBe('Only this');
  });

  it('reports an error event with the policy reason, keeps the partial reply and asks for fresh entitlements', async () => {
    gateway.scenario = (res) => {
      startStream(res, 'dec-start');
      res.write(chunk('The first part'));
      res.end(`event: error\ndata: ${JSON.stringify(exportProblem)}\n\n`);
    };
    const sent = await chat.send({ model: 'mythos-5', content: 'Summarise' });
    await chat.settled(sent.conversationId);

    expect(doneEvents()[0]).toEqual({
      conversationId: sent.conversationId,
      messageId: sent.messageId,
      status: 'error',
      error: {
        code: 'MODEL_DENIED',
        reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
        policy: exportProblem.policy,
        message: exportProblem.message,
      },
    });
    expect(forbidden).toBe(1);
    const saved = (await store.get(sent.conversationId)).messages[1];
    expect(saved).toMatchObject({ status: 'error', content: 'The first part', decisionId: 'dec-cut-1' });
    expect(saved?.error?.reason).toBe('EXPORT_CONTROL_US_PERSON_REQUIRED');
  });

  it('reads an OpenAI-style error chunk carrying problem fields the same way', async () => {
    gateway.scenario = (res) => {
      startStream(res);
      res.write(chunk('Partial'));
      res.end(
        `data: ${JSON.stringify({ error: { ...exportProblem, reason: 'MODEL_SUSPENDED', message: 'Suspended by directive.' } })}\n\n`,
      );
    };
    const sent = await chat.send({ model: 'mythos-5', content: 'Summarise' });
    await chat.settled(sent.conversationId);
    expect(doneEvents()[0]?.error).toEqual({
      code: 'MODEL_DENIED',
      reason: 'MODEL_SUSPENDED',
      policy: exportProblem.policy,
      message: 'Suspended by directive.',
    });
    expect((await store.get(sent.conversationId)).messages[1]?.content).toBe('Partial');
  });

  it('turns a 403 problem into an error with its reason and asks for fresh entitlements', async () => {
    gateway.scenario = (res) => {
      res.writeHead(403, { 'content-type': PROBLEM_CONTENT_TYPE });
      res.end(JSON.stringify({ ...exportProblem, decisionId: 'dec-403' }));
    };
    const sent = await chat.send({ model: 'mythos-5', content: 'Hello' });
    await chat.settled(sent.conversationId);
    expect(doneEvents()[0]?.error).toEqual({
      code: 'MODEL_DENIED',
      reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
      policy: exportProblem.policy,
      message: exportProblem.message,
    });
    expect(forbidden).toBe(1);
    const [user, reply] = (await store.get(sent.conversationId)).messages;
    expect(user).toMatchObject({ content: 'Hello', decisionId: 'dec-403' });
    expect(reply).toMatchObject({ content: '', status: 'error' });
  });

  it('refuses a model the entitlement document denies without reaching the gateway or saving anything', async () => {
    denied.add('mythos-5');
    await expect(chat.send({ model: 'mythos-5', content: 'Hello' })).rejects.toMatchObject({
      error: { code: 'MODEL_DENIED', reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED', message: exportProblem.message },
    });
    expect(gateway.requests).toEqual([]);
    expect(await store.list()).toEqual([]);
    expect(events).toEqual([]);
  });

  it('treats a failure of the authorized fetch itself as an error on the reply', async () => {
    const failing = new ChatService({
      store,
      fetch: () => Promise.reject(new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED') })),
      checkModel: () => ({ allowed: true }),
      onForbidden: () => forbidden++,
      emit: (name, payload) => events.push({ name, payload } as Recorded),
      clock: fixture.clock,
    });
    const sent = await failing.send({ model: 'haiku-4', content: 'Hello' });
    await failing.settled();
    expect(doneEvents()[0]?.error?.message).toBe(
      'Clearance lost its connection to the gateway. Try again once it is back.',
    );
    expect(doneEvents()[0]?.error?.detail).toMatch(/ECONNREFUSED/);
    expect((await store.get(sent.conversationId)).messages[1]?.status).toBe('error');
    await failing.dispose();
  });
});

describe('ChatService regenerate and edit', () => {
  it('regenerates by replacing the last reply to the last user message', async () => {
    echoScenario();
    const sent = await chat.send({ model: 'haiku-4', content: 'first' });
    await chat.settled(sent.conversationId);
    const again = await chat.regenerate(sent.conversationId);
    await chat.settled(sent.conversationId);

    expect(again.messageId).not.toBe(sent.messageId);
    const messages = (await store.get(sent.conversationId)).messages;
    expect(messages.map((m) => [m.role, m.content])).toEqual([
      ['user', 'first'],
      ['assistant', 'Echo: first'],
    ]);
    expect(messages[1]?.id).toBe(again.messageId);
    expect((gateway.requests[1]?.body as { messages: unknown }).messages).toEqual([{ role: 'user', content: 'first' }]);
  });

  it('edits and resends from a message, dropping it and everything after', async () => {
    echoScenario();
    const sent = await chat.send({ model: 'haiku-4', content: 'one' });
    await chat.settled(sent.conversationId);
    await chat.send({ conversationId: sent.conversationId, model: 'haiku-4', content: 'two' });
    await chat.settled(sent.conversationId);
    const secondUser = (await store.get(sent.conversationId)).messages[2];

    await chat.send({
      conversationId: sent.conversationId,
      model: 'sonnet-5',
      content: 'two, edited',
      replaceFromMessageId: secondUser?.id,
    });
    await chat.settled(sent.conversationId);
    const conversation = await store.get(sent.conversationId);
    expect(conversation.messages.map((m) => m.content)).toEqual([
      'one',
      'Echo: one',
      'two, edited',
      'Echo: two, edited',
    ]);
    expect(conversation.model).toBe('sonnet-5');
    expect(conversation.messages[3]?.model).toBe('sonnet-5');
    await expect(
      chat.send({ conversationId: sent.conversationId, model: 'haiku-4', content: 'x', replaceFromMessageId: 'gone' }),
    ).rejects.toMatchObject({ error: { code: 'NOT_FOUND' } });
  });

  it('stops a reply still streaming before sending the next message in the same conversation', async () => {
    gateway.scenario = async (res, closed, request) => {
      startStream(res);
      if (lastUserText(request) === 'slow') {
        await closed;
        return;
      }
      res.end(`${chunk('fast reply', 'stop')}data: [DONE]\n\n`);
    };
    const slow = await chat.send({ model: 'haiku-4', content: 'slow' });
    await waitUntil(() => gateway.requests.length === 1, 'the first request');
    const fast = await chat.send({ conversationId: slow.conversationId, model: 'haiku-4', content: 'fast' });
    await chat.settled(slow.conversationId);
    expect(doneEvents().map((d) => [d.messageId, d.status])).toEqual([
      [slow.messageId, 'stopped'],
      [fast.messageId, 'complete'],
    ]);
  });

  it('aborts the upstream request when its conversation is deleted mid-stream', async () => {
    gateway.scenario = async (res, closed) => {
      startStream(res);
      let open = true;
      void closed.then(() => (open = false));
      for (let i = 0; open && i < 1000; i++) {
        res.write(chunk('x'));
        await pause(5);
      }
    };
    const sent = await chat.send({ model: 'haiku-4', content: 'delete me' });
    await waitUntil(() => deltas(sent.messageId).length > 0, 'a delta');
    await store.delete(sent.conversationId);
    await chat.settled(sent.conversationId);
    await waitUntil(() => gateway.closedByClient === 1, 'the connection to close');
    expect(await store.list()).toEqual([]);
  });
});
