import type { ChatMessage, CompletionMessage } from './upstream';

/** The text of a message's `content`: a string, or the `text` of its text parts. */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((part) =>
      typeof part === 'object' && part !== null && typeof (part as { text?: unknown }).text === 'string'
        ? (part as { text: string }).text
        : '',
    )
    .join('');
}

/** Messages reduced to system, user and assistant text (`developer` counts as `system`). */
export function textMessages(messages: readonly ChatMessage[]): CompletionMessage[] {
  return messages.map((message) => ({
    role: message.role === 'developer' ? 'system' : (message.role as CompletionMessage['role']),
    content: contentText(message.content),
  }));
}
