import { randomUUID } from 'node:crypto';
import type { ChatMessage, Conversation, ConversationSummary } from '../../shared/ipc';
import type { ConversationStore } from './ConversationStore';

/** What {@link seedConversation} writes. */
export interface SeedOptions {
  /** How many messages, alternating user and assistant, starting with the user. */
  readonly messages: number;
  readonly model?: string;
  readonly title?: string;
  /** Time of the last message (ms since epoch); earlier ones are a minute apart. Defaults to now. */
  readonly endsAt?: number;
}

const TOPICS = ['tokenizer drift', 'eval harness', 'attention sinks', 'reward hacking', 'KV cache layout'] as const;

function seededContent(index: number, role: ChatMessage['role']): string {
  const topic = TOPICS[index % TOPICS.length] ?? 'the run';
  if (role === 'user') return `Message ${index + 1}: what should we check next about ${topic}?`;
  if (index % 50 === 1) {
    return [
      `Message ${index + 1}: here is a sketch for ${topic}.`,
      '',
      '```python',
      `def check_${index}(batch):`,
      '    return [x for x in batch if x.score > 0.5]',
      '```',
      '',
      '| metric | value |',
      '| --- | --- |',
      `| loss | ${(index % 97) / 10} |`,
    ].join('\n');
  }
  return (
    `Message ${index + 1}: on **${topic}**, compare the last two runs, then look at the outliers. ` +
    'Keep the seed fixed and log the config hash so the result can be reproduced later.'
  );
}

/**
 * Writes a conversation of `messages` generated messages in one save. Test and harness use only.
 *
 * Used by the Playwright fixture (through the harness) to open and scroll a 10,000-message
 * conversation, and by unit tests measuring large conversations.
 */
export async function seedConversation(store: ConversationStore, options: SeedOptions): Promise<ConversationSummary> {
  if (!Number.isInteger(options.messages) || options.messages < 0 || options.messages > 1_000_000) {
    throw new Error('seedConversation needs a whole number of messages between 0 and 1,000,000');
  }
  const model = options.model ?? 'demo-echo';
  const endsAt = options.endsAt ?? Date.now();
  const startsAt = endsAt - Math.max(0, options.messages - 1) * 60_000;
  const messages: ChatMessage[] = Array.from({ length: options.messages }, (_, index) => {
    const role = index % 2 === 0 ? 'user' : 'assistant';
    return {
      id: `seed-${index}`,
      role,
      content: seededContent(index, role),
      createdAt: new Date(startsAt + index * 60_000).toISOString(),
      model,
      status: 'complete',
    };
  });
  const conversation: Conversation = {
    id: randomUUID(),
    title: options.title ?? `Seeded conversation (${options.messages} messages)`,
    model,
    createdAt: new Date(startsAt).toISOString(),
    updatedAt: new Date(endsAt).toISOString(),
    messages,
  };
  const saved = await store.importConversation(conversation);
  return {
    id: saved.id,
    title: saved.title,
    model: saved.model,
    updatedAt: saved.updatedAt,
    messageCount: saved.messages.length,
  };
}
