import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bench, describe } from 'vitest';
import { ConversationStore } from '../main/conversations/ConversationStore';
import { seedConversation } from '../main/conversations/seed';
import { MemorySecretStore } from '../main/node/adapters';

/** Opening a long conversation from disk (decrypt, parse, check) and searching many. */
const secrets = new MemorySecretStore();
const dir = await mkdtemp(join(tmpdir(), 'clearance-bench-'));
const clock = { now: () => Date.now() };
const seeding = new ConversationStore({ dir, secrets, clock });
const long = await seedConversation(seeding, { messages: 10_000 });
for (let i = 0; i < 50; i++) await seedConversation(seeding, { messages: 40, title: `Project ${i}` });
await seeding.close();

describe('conversations', () => {
  bench(
    'open a 10,000-message conversation cold',
    async () => {
      const store = new ConversationStore({ dir, secrets, clock, cacheSize: 0 });
      await store.get(long.id);
      await store.close();
    },
    { iterations: 5, time: 0 },
  );
  const store = new ConversationStore({ dir, secrets, clock });
  bench('search 51 conversations (~12,000 messages)', async () => {
    await store.list('quic');
  });
});
