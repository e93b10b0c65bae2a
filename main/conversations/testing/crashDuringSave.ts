/**
 * Child process for the crash test: appends a message and is killed (SIGKILL) between write and rename.
 *
 * Usage: node --import tsx crashDuringSave.ts <dir> <secret-store-key-hex> <conversation-id>
 */
import { MemorySecretStore } from '../../node/adapters';
import { writeFileAtomic } from '../../storage/atomicFile';
import { ConversationStore } from '../ConversationStore';

const [dir, keyHex, conversationId] = process.argv.slice(2);
if (!dir || !keyHex || !conversationId) throw new Error('usage: crashDuringSave.ts <dir> <key-hex> <conversation-id>');

const store = new ConversationStore({
  dir,
  secrets: new MemorySecretStore(Buffer.from(keyHex, 'hex')),
  clock: { now: () => Date.now() },
  writeFile: (path, data) =>
    writeFileAtomic(path, data, {
      beforeRename: (temp) => {
        if (!path.endsWith(`${conversationId}.conv`)) return;
        process.stdout.write(`${temp}\n`);
        process.kill(process.pid, 'SIGKILL');
      },
    }),
});
await store.appendMessage(conversationId, { role: 'user', content: 'second version that never lands' });
