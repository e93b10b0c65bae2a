import type { ChatMessage, Conversation } from '../../shared/ipc';

/** A conversation rendered for saving: a suggested file name and the file's text. */
export interface ExportedConversation {
  readonly fileName: string;
  readonly content: string;
}

/** Identifies a JSON export, so an importer can recognise one. */
export const JSON_EXPORT_FORMAT = 'clearance.conversation';

/** A file name from the title and date: only characters every file system accepts. */
export function exportFileName(conversation: Conversation, extension: 'md' | 'json'): string {
  const slug =
    conversation.title
      .normalize('NFKD')
      .replace(/[\u0300-\u036f]/g, '')
      .replace(/[^A-Za-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 60)
      .replace(/-+$/, '')
      .toLowerCase() || 'conversation';
  return `${slug}-${conversation.createdAt.slice(0, 10)}.${extension}`;
}

function speaker(message: ChatMessage): string {
  if (message.role === 'user') return 'You';
  return message.model ? `Assistant (${message.model})` : 'Assistant';
}

function statusNote(message: ChatMessage): string | undefined {
  if (message.status === 'stopped') return '_Reply stopped before it was finished._';
  if (message.status === 'streaming') return '_Reply was still being written when exported._';
  if (message.status === 'error') return `_Reply interrupted: ${message.error?.message ?? 'unknown error'}_`;
  return undefined;
}

/**
 * The conversation as Markdown: title, facts, then each message under its speaker.
 *
 * Message text is Markdown already and goes in as written.
 */
export function conversationToMarkdown(conversation: Conversation, exportedAt: string): ExportedConversation {
  const lines = [
    `# ${conversation.title.replace(/\s+/g, ' ')}`,
    '',
    `- Model: ${conversation.model}`,
    `- Started: ${conversation.createdAt}`,
    `- Exported: ${exportedAt}`,
    `- Messages: ${conversation.messages.length}`,
  ];
  for (const message of conversation.messages) {
    lines.push('', '---', '', `## ${speaker(message)}`, '', `<sub>${message.createdAt}</sub>`, '', message.content);
    const note = statusNote(message);
    if (note) lines.push('', note);
  }
  return { fileName: exportFileName(conversation, 'md'), content: `${lines.join('\n')}\n` };
}

/** The conversation as JSON, wrapped with a format tag and version so it can be imported later. */
export function conversationToJson(conversation: Conversation, exportedAt: string): ExportedConversation {
  const content = JSON.stringify({ format: JSON_EXPORT_FORMAT, version: 1, exportedAt, conversation }, null, 2);
  return { fileName: exportFileName(conversation, 'json'), content: `${content}\n` };
}
