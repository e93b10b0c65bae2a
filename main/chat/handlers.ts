import type { IpcHandlers } from '../ipc/dispatch';
import { IpcFailure } from '../ipc/dispatch';
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

/** One person's conversations and chat. */
export interface PersonalChat {
  readonly store: ConversationStore;
  readonly chat: ChatService;
}

function notSignedIn(): IpcFailure {
  return new IpcFailure('NOT_SIGNED_IN', 'Sign in to see your conversations.');
}

/**
 * Binds the chat and conversation IPC calls to the signed-in person's services, for the composition root.
 *
 * Every call reaches only the person signed in now (`person` answers undefined when nobody is), so a
 * conversation id of someone else is simply not found. Deleting stops a reply still streaming into the
 * conversation first, so its partial text goes to the trash with it.
 */
export function createChatHandlers(deps: {
  readonly person: () => Promise<PersonalChat | undefined>;
  readonly files: FileSaver;
}): ChatHandlers {
  const { files } = deps;
  const person = async (): Promise<PersonalChat> => {
    const current = await deps.person();
    if (!current) throw notSignedIn();
    return current;
  };
  return {
    sendChat: async (request) => (await person()).chat.send(request),
    stopChat: async ({ conversationId }) => (await person()).chat.stop(conversationId),
    listConversations: async ({ query }) => {
      const current = await deps.person();
      return current ? current.store.list(query) : [];
    },
    getConversation: async ({ id }) => (await person()).store.get(id),
    renameConversation: async ({ id, title }) => (await person()).store.rename(id, title),
    deleteConversation: async ({ id }) => {
      const { chat, store } = await person();
      await chat.stop(id);
      return { deleted: await store.delete(id) };
    },
    restoreConversation: async ({ id }) => ({ restored: await (await person()).store.restore(id) }),
    exportConversation: async ({ id, format }) => {
      const { store } = await person();
      const exported = format === 'markdown' ? await store.exportMarkdown(id) : await store.exportJson(id);
      const { savedTo } = await files.save(exported.fileName, exported.content);
      return savedTo === undefined ? { ...exported } : { ...exported, savedTo };
    },
  };
}
