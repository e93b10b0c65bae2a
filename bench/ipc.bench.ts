import { bench, describe } from 'vitest';
import { dispatchIpc, IpcFailure, type IpcHandlers } from '../main/ipc/dispatch';
import { ipcCalls } from '../shared/ipc';

/** The cost IPC adds to each call: channel check, request schema, response schema. */
const fail = () => Promise.reject(new IpcFailure('INTERNAL', 'unused'));
const handlers = {
  ...Object.fromEntries(Object.keys(ipcCalls).map((channel) => [channel, fail])),
  sendChat: async () => ({ conversationId: 'c-1', messageId: 'm-1' }),
  listConversations: async () =>
    Array.from({ length: 200 }, (_, i) => ({
      id: `c-${i}`,
      title: `Conversation ${i}`,
      model: 'haiku-4',
      updatedAt: new Date(0).toISOString(),
      messageCount: i,
    })),
} as unknown as IpcHandlers;
const content = 'Explain the difference between TCP and QUIC. '.repeat(40);

describe('IPC dispatch', () => {
  bench('sendChat (2 KB message)', async () => {
    await dispatchIpc(handlers, 'sendChat', { model: 'haiku-4', content });
  });
  bench('listConversations (200 summaries)', async () => {
    await dispatchIpc(handlers, 'listConversations', {});
  });
  bench('malformed payload rejected', async () => {
    await dispatchIpc(handlers, 'sendChat', { model: 7 });
  });
});
