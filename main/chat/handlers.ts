import type { IpcHandlers } from '../ipc/dispatch';
import type { ConversationStore } from '../conversations/ConversationStore';
import type { FileSaver } from '../platform';
import type { ChatService } from './ChatService';

/** The IPC calls chat and conversations answer. */
export type ChatHandlers = Pick<
  IpcHandlers,
  | 'sendChat'
  | 'stopChat'
  | 'listConversations'
  | 'getConversation'
  | 'renameConversation'
  | 'deleteConversation'
  | 'restoreConversation'
  | 'exportConversation'
>;

/**
 * Binds the chat and conversation IPC calls to their services, for the composition root to spread into its handlers.
 *
 * Deleting stops a reply still streaming into the conversation first, so its partial text goes to the trash with it.
 */
export function createChatHandlers(deps: {
  readonly store: ConversationStore;
  readonly chat: ChatService;
  readonly files: FileSaver;
}): ChatHandlers {
  const { store, chat, files } = deps;
  return {
    sendChat: (request) => chat.send(request),
    stopChat: ({ conversationId }) => chat.stop(conversationId),
    listConversations: ({ query }) => store.list(query),
    getConversation: ({ id }) => store.get(id),
    renameConversation: ({ id, title }) => store.rename(id, title),
    deleteConversation: async ({ id }) => {
      await chat.stop(id);
      return { deleted: await store.delete(id) };
    },
    restoreConversation: async ({ id }) => ({ restored: await store.restore(id) }),
    exportConversation: async ({ id, format }) => {
      const exported = format === 'markdown' ? await store.exportMarkdown(id) : await store.exportJson(id);
      const { savedTo } = await files.save(exported.fileName, exported.content);
      return savedTo === undefined ? { ...exported } : { ...exported, savedTo };
    },
  };
}
