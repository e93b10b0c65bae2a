import type { ChatMessage, Conversation, IpcError } from '../../shared/ipc';

/**
 * A reply as it streams in: the text received so far and how the stream ended.
 *
 * Kept apart from the stored conversation so a snapshot fetched mid-stream never loses tokens.
 */
export interface ChatStream {
  readonly conversationId: string;
  readonly messageId: string;
  readonly text: string;
  readonly status: 'streaming' | 'complete' | 'stopped' | 'error';
  readonly model?: string;
  readonly error?: IpcError;
}

/**
 * A message the user has just sent, shown before main confirms it.
 *
 * `conversationId` is undefined while a new chat waits for its id; `replaceFromMessageId` hides
 * the messages an edit or regenerate replaces.
 */
export interface PendingSend {
  readonly conversationId: string | undefined;
  readonly replaceFromMessageId?: string;
  readonly message: ChatMessage;
}

function withStream(message: ChatMessage, stream: ChatStream): ChatMessage {
  // A snapshot can be ahead of the stream when the page started listening mid-reply.
  const content = stream.text.length >= message.content.length ? stream.text : message.content;
  return { ...message, content, status: stream.status, error: stream.error ?? message.error };
}

function fromStream(stream: ChatStream): ChatMessage {
  return {
    id: stream.messageId,
    role: 'assistant',
    content: stream.text,
    createdAt: '',
    model: stream.model,
    status: stream.status,
    error: stream.error,
  };
}

/**
 * The messages to show for a conversation: the stored ones, the pending send and live streams.
 *
 * Messages untouched by a stream keep their identity, so memoized rows do not re-render.
 */
export function visibleMessages(
  conversation: Conversation | undefined,
  conversationId: string | undefined,
  pending: PendingSend | undefined,
  streams: Readonly<Record<string, ChatStream>>,
): readonly ChatMessage[] {
  let messages: readonly ChatMessage[] =
    conversation && conversationId !== undefined && conversation.id === conversationId ? conversation.messages : [];
  if (pending && pending.conversationId === conversationId) {
    if (pending.replaceFromMessageId !== undefined) {
      const cut = messages.findIndex((message) => message.id === pending.replaceFromMessageId);
      if (cut >= 0) messages = messages.slice(0, cut);
    }
    messages = [...messages, pending.message];
  }
  if (conversationId === undefined) return messages;
  const live = new Map<string, ChatStream>();
  for (const stream of Object.values(streams)) {
    if (stream.conversationId === conversationId) live.set(stream.messageId, stream);
  }
  if (live.size === 0) return messages;
  const merged = messages.map((message) => {
    const stream = live.get(message.id);
    if (!stream) return message;
    live.delete(message.id);
    return withStream(message, stream);
  });
  for (const stream of live.values()) merged.push(fromStream(stream));
  return merged;
}

/**
 * Drops finished streams that a fresh snapshot of their conversation now holds in full.
 */
export function settleStreams(
  streams: Readonly<Record<string, ChatStream>>,
  snapshot: Conversation,
): Readonly<Record<string, ChatStream>> {
  let changed = false;
  const next: Record<string, ChatStream> = {};
  for (const [id, stream] of Object.entries(streams)) {
    const stored = stream.conversationId === snapshot.id ? snapshot.messages.find((m) => m.id === id) : undefined;
    if (stream.status !== 'streaming' && stored && stored.status !== 'streaming') {
      changed = true;
      continue;
    }
    next[id] = stream;
  }
  return changed ? next : streams;
}

/** Whether a reply is being generated in a conversation. */
export function isStreaming(messages: readonly ChatMessage[]): boolean {
  return messages.some((message) => message.status === 'streaming');
}
