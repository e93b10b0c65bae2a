import { describe, expect, it } from 'vitest';
import type { Conversation } from '../../shared/ipc';
import { conversationFixture } from '../test/fixtures';
import { isStreaming, settleStreams, visibleMessages, type ChatStream, type PendingSend } from './messages';

const conversation: Conversation = conversationFixture();

describe('visibleMessages', () => {
  it('returns the stored messages untouched (same identity) when nothing is live', () => {
    const shown = visibleMessages(conversation, 'c1', undefined, {});
    expect(shown).toBe(conversation.messages);
  });

  it('shows nothing of a conversation that is not the one asked for', () => {
    expect(visibleMessages(conversation, 'other', undefined, {})).toEqual([]);
  });

  it('appends a pending message, cutting what an edit replaces', () => {
    const pending: PendingSend = {
      conversationId: 'c1',
      replaceFromMessageId: 'm1',
      message: { id: 'pending-1', role: 'user', content: 'Edited', createdAt: '' },
    };
    expect(visibleMessages(conversation, 'c1', pending, {}).map((m) => m.id)).toEqual(['pending-1']);
  });

  it('shows a new chat’s pending message before it has an id', () => {
    const pending: PendingSend = {
      conversationId: undefined,
      message: { id: 'pending-1', role: 'user', content: 'Hi', createdAt: '' },
    };
    expect(visibleMessages(undefined, undefined, pending, {}).map((m) => m.content)).toEqual(['Hi']);
  });

  it('appends a stream whose message the snapshot does not hold yet, and keeps other rows’ identity', () => {
    const stream: ChatStream = {
      conversationId: 'c1',
      messageId: 'a9',
      text: 'Partial',
      status: 'streaming',
      model: 'haiku-4',
    };
    const shown = visibleMessages(conversation, 'c1', undefined, { a9: stream });
    expect(shown.map((m) => [m.id, m.content, m.status])).toEqual([
      ['m1', 'What is a tokenizer?', undefined],
      ['m2', conversation.messages[1]?.content, 'complete'],
      ['a9', 'Partial', 'streaming'],
    ]);
    expect(shown[0]).toBe(conversation.messages[0]);
  });

  it('overlays a stream on its stored message, keeping the longer text', () => {
    const stored = conversationFixture({
      messages: [{ id: 'a1', role: 'assistant', content: 'Hello wor', createdAt: '', status: 'streaming' }],
    });
    const behind: ChatStream = { conversationId: 'c1', messageId: 'a1', text: 'Hello', status: 'streaming' };
    const ahead: ChatStream = {
      ...behind,
      text: 'Hello world!',
      status: 'error',
      error: { code: 'INTERNAL', message: 'cut' },
    };
    expect(visibleMessages(stored, 'c1', undefined, { a1: behind })[0]?.content).toBe('Hello wor');
    const overlaid = visibleMessages(stored, 'c1', undefined, { a1: ahead })[0];
    expect([overlaid?.content, overlaid?.status, overlaid?.error?.message]).toEqual(['Hello world!', 'error', 'cut']);
  });
});

describe('settleStreams', () => {
  it('drops finished streams the snapshot now holds, keeping live and foreign ones', () => {
    const snapshot = conversationFixture({
      messages: [
        { id: 'a1', role: 'assistant', content: 'done', createdAt: '', status: 'complete' },
        { id: 'a2', role: 'assistant', content: 'going', createdAt: '', status: 'streaming' },
      ],
    });
    const streams: Record<string, ChatStream> = {
      a1: { conversationId: 'c1', messageId: 'a1', text: 'done', status: 'complete' },
      a2: { conversationId: 'c1', messageId: 'a2', text: 'going', status: 'streaming' },
      x1: { conversationId: 'c9', messageId: 'x1', text: 'elsewhere', status: 'complete' },
    };
    expect(Object.keys(settleStreams(streams, snapshot))).toEqual(['a2', 'x1']);
  });

  it('returns the same object when nothing settles', () => {
    const streams = { a2: { conversationId: 'c1', messageId: 'a2', text: '', status: 'streaming' as const } };
    expect(settleStreams(streams, conversation)).toBe(streams);
  });
});

describe('isStreaming', () => {
  it('is true only while a message is streaming', () => {
    expect(isStreaming(conversation.messages)).toBe(false);
    expect(isStreaming([{ id: 'a', role: 'assistant', content: '', createdAt: '', status: 'streaming' }])).toBe(true);
  });
});
