import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ipcCalls } from '../../shared/ipc';
import { StoreFixture } from '../conversations/testing/fixture';
import { dispatchIpc, IpcFailure, type IpcHandlers } from '../ipc/dispatch';
import { ChatService } from './ChatService';
import { createChatHandlers } from './handlers';
import { chunk, FakeGateway, startStream } from './testing/fakeGateway';

let fixture: StoreFixture;
let gateway: FakeGateway;
let handlers: IpcHandlers;
let chat: ChatService;
const saved: { name: string; content: string }[] = [];

beforeEach(async () => {
  fixture = await StoreFixture.create();
  gateway = await FakeGateway.start();
  gateway.scenario = (res) => {
    startStream(res);
    res.end(`${chunk('Hi there', 'stop')}data: [DONE]\n\n`);
  };
  const store = fixture.store();
  chat = new ChatService({
    store,
    fetch: gateway.fetch,
    checkModel: () => ({ allowed: true }),
    onForbidden: () => {},
    emit: () => {},
    clock: fixture.clock,
  });
  const files = {
    save: async (name: string, content: string) => {
      saved.push({ name, content });
      return { savedTo: `/home/researcher/Downloads/${name}` };
    },
  };
  const missing = () => Promise.reject(new IpcFailure('INTERNAL', 'not under test'));
  const others = Object.fromEntries(
    Object.keys(ipcCalls).map((channel) => [channel, missing]),
  ) as unknown as IpcHandlers;
  handlers = { ...others, ...createChatHandlers({ person: async () => ({ store, chat }), files }) };
});

afterEach(async () => {
  await chat.dispose();
  await gateway.close();
  await fixture.dispose();
});

describe('createChatHandlers', () => {
  it('answers every chat call within the contract, from send to export, delete and restore', async () => {
    const sent = await dispatchIpc(handlers, 'sendChat', { model: 'haiku-4', content: 'Hello there' });
    expect(sent.ok).toBe(true);
    const { conversationId } = (sent as { value: { conversationId: string } }).value;
    await chat.settled();

    const listed = await dispatchIpc(handlers, 'listConversations', { query: 'hi THERE' });
    expect(listed).toMatchObject({ ok: true, value: [{ id: conversationId, title: 'Hello there', messageCount: 2 }] });
    expect(await dispatchIpc(handlers, 'renameConversation', { id: conversationId, title: 'Greeting' })).toMatchObject({
      ok: true,
      value: { title: 'Greeting' },
    });
    const exported = await dispatchIpc(handlers, 'exportConversation', { id: conversationId, format: 'markdown' });
    expect(exported).toMatchObject({ ok: true, value: { fileName: 'greeting-2026-11-26.md' } });
    expect((exported as { value: { savedTo: string } }).value.savedTo).toMatch(/Downloads\/greeting/);
    expect(saved[0]?.content).toContain('Hi there');

    expect(await dispatchIpc(handlers, 'deleteConversation', { id: conversationId })).toEqual({
      ok: true,
      value: { deleted: true },
    });
    expect(await dispatchIpc(handlers, 'getConversation', { id: conversationId })).toMatchObject({
      ok: false,
      error: { code: 'NOT_FOUND' },
    });
    expect(await dispatchIpc(handlers, 'restoreConversation', { id: conversationId })).toEqual({
      ok: true,
      value: { restored: true },
    });
    expect(await dispatchIpc(handlers, 'getConversation', { id: conversationId })).toMatchObject({
      ok: true,
      value: { title: 'Greeting', messages: [{ content: 'Hello there' }, { content: 'Hi there', status: 'complete' }] },
    });
    expect(await dispatchIpc(handlers, 'stopChat', { conversationId })).toEqual({
      ok: true,
      value: { stopped: false },
    });
  });
});
