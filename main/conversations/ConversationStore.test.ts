import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemorySecretStore } from '../node/adapters';
import type { SecretStore } from '../platform';
import { writeFileAtomic, type AtomicWrite } from '../storage/atomicFile';
import { DEFAULT_TITLE, type SetAsideFile } from './ConversationStore';
import { seedConversation } from './seed';
import { StoreFixture } from './testing/fixture';

let fixture: StoreFixture;

beforeEach(async () => {
  fixture = await StoreFixture.create();
});

afterEach(async () => {
  await fixture.dispose();
});

function flipByte(data: Buffer, at: number): Buffer {
  const copy = Buffer.from(data);
  copy[at] = (copy[at] ?? 0) ^ 0xff;
  return copy;
}

describe('ConversationStore encryption', () => {
  it('round-trips a conversation through a restart with the same OS secret store', async () => {
    const store = fixture.store();
    const created = await store.create('haiku-4', 'Tokenizer drift notes');
    await store.appendMessage(created.id, {
      role: 'user',
      content: 'Why does the BPE merge table differ?',
      model: 'haiku-4',
    });
    await store.appendMessage(created.id, {
      role: 'assistant',
      content: 'Because the vocabulary was retrained.',
      model: 'haiku-4',
      decisionId: 'dec-123',
      status: 'complete',
    });
    await store.close();

    const reopened = await fixture.store().get(created.id);
    expect(reopened.title).toBe('Tokenizer drift notes');
    expect(reopened.messages.map((m) => [m.role, m.content, m.model])).toEqual([
      ['user', 'Why does the BPE merge table differ?', 'haiku-4'],
      ['assistant', 'Because the vocabulary was retrained.', 'haiku-4'],
    ]);
    expect(reopened.messages[1]?.decisionId).toBe('dec-123');
  });

  it('keeps no plaintext title or message text in any file on disk', async () => {
    const store = fixture.store();
    const title = 'Quarterly export-review zebra';
    const text = 'The secret phrase is marmalade-octopus-42';
    const created = await store.create('haiku-4', title);
    const reply = await store.appendMessage(created.id, { role: 'assistant', content: '', status: 'streaming' });
    await store.appendMessage(created.id, { role: 'user', content: text });
    store.appendDelta(created.id, reply.id, 'streamed-walrus-reply');
    await store.close();

    const files = await fixture.files();
    expect(files).toEqual(expect.arrayContaining(['data-key.bin', 'index.bin', `${created.id}.conv`]));
    const bytes = await fixture.allBytes();
    for (const needle of [title, 'zebra', text, 'marmalade', 'streamed-walrus', 'haiku-4']) {
      expect(bytes.includes(Buffer.from(needle)), `"${needle}" found on disk`).toBe(false);
    }
    expect((await fixture.store().get(created.id)).messages.map((m) => m.content)).toContain('streamed-walrus-reply');
  });

  it('stores the data key only wrapped by the OS secret store', async () => {
    const wrapped: Uint8Array[] = [];
    const base = fixture.secrets();
    const spying: SecretStore = {
      isAvailable: () => true,
      backend: () => 'os',
      encrypt: (plain) => {
        const out = base.encrypt(plain);
        wrapped.push(out);
        return out;
      },
      decrypt: (cipher) => base.decrypt(cipher),
    };
    await fixture.store({ secrets: spying }).open();
    expect(wrapped).toHaveLength(1);
    expect(Buffer.compare(await readFile(join(fixture.dir, 'data-key.bin')), Buffer.from(wrapped[0] ?? []))).toBe(0);
  });

  it('sets every file aside and starts afresh when the OS secret store can no longer unwrap the key', async () => {
    const store = fixture.store();
    const created = await store.create('haiku-4', 'Before the keyring reset');
    await store.close();

    const other = fixture.store({ secrets: new MemorySecretStore(randomBytes(32)) });
    const reports: SetAsideFile[] = [];
    other.onDidSetAside((file) => reports.push(file));
    expect(await other.list()).toEqual([]);
    expect(reports.map((r) => r.file)).toEqual([`${created.id}.conv`]);
    expect(reports[0]?.reason).toMatch(/secret store could not decrypt/);
    expect(existsSync(reports[0]?.movedTo ?? '')).toBe(true);
    const files = await fixture.files();
    expect(files.filter((f) => f.startsWith('corrupt/key-'))).toHaveLength(3);
  });

  it('refuses to open with a clear message when no OS secret store is available', async () => {
    const none: SecretStore = {
      isAvailable: () => false,
      backend: () => 'unknown',
      encrypt: () => {
        throw new Error('unavailable');
      },
      decrypt: () => {
        throw new Error('unavailable');
      },
    };
    await expect(fixture.store({ secrets: none }).list()).rejects.toThrow(/no secure storage/);
  });

  it('cannot be tricked into reading a file renamed to another conversation id', async () => {
    const store = fixture.store();
    const a = await store.create('haiku-4', 'A');
    const b = await store.create('haiku-4', 'B');
    await store.close();
    await writeFile(join(fixture.dir, `${b.id}.conv`), await readFile(join(fixture.dir, `${a.id}.conv`)));

    const reopened = fixture.store();
    const ids = (await reopened.list()).map((s) => s.id);
    expect(ids).toEqual([a.id]);
    expect(reopened.unreadableFiles().map((f) => f.file)).toEqual([`${b.id}.conv`]);
  });
});

describe('ConversationStore crash safety', () => {
  it('keeps the saved version when the process is killed between write and rename, and removes the temp file', async () => {
    const store = fixture.store();
    const created = await store.create('haiku-4', 'Crash test');
    await store.appendMessage(created.id, { role: 'user', content: 'first version' });
    await store.close();
    const before = await readFile(join(fixture.dir, `${created.id}.conv`));

    const script = fileURLToPath(new URL('./testing/crashDuringSave.ts', import.meta.url));
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', script, fixture.dir, fixture.secretKey.toString('hex'), created.id],
      { cwd: fileURLToPath(new URL('../..', import.meta.url)), encoding: 'utf8', timeout: 20_000 },
    );
    expect(child.stderr).not.toMatch(/Error/);
    expect(child.signal).toBe('SIGKILL');
    const tempPath = child.stdout.trim();
    expect(tempPath).toMatch(/\.tmp$/);
    expect(existsSync(tempPath)).toBe(true);
    expect(Buffer.compare(await readFile(join(fixture.dir, `${created.id}.conv`)), before)).toBe(0);

    const reopened = fixture.store();
    const loaded = await reopened.get(created.id);
    expect(loaded.messages.map((m) => m.content)).toEqual(['first version']);
    expect(existsSync(tempPath)).toBe(false);
    expect((await fixture.files()).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(reopened.unreadableFiles()).toEqual([]);
  });

  it('reports a failed write to the caller and keeps the old file when the rename never happens', async () => {
    let failNext = false;
    const writeFileOrFail: AtomicWrite = (path, data) =>
      writeFileAtomic(path, data, {
        beforeRename: () => {
          if (failNext) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
        },
      });
    const store = fixture.store({ writeFile: writeFileOrFail });
    const created = await store.create('haiku-4', 'Disk full');
    await store.appendMessage(created.id, { role: 'user', content: 'kept' });
    failNext = true;
    await expect(store.appendMessage(created.id, { role: 'user', content: 'lost' })).rejects.toThrow(/ENOSPC/);
    expect((await fixture.files()).filter((f) => f.endsWith('.tmp'))).toEqual([]);

    const reopened = await fixture.store().get(created.id);
    expect(reopened.messages.map((m) => m.content)).toEqual(['kept']);

    // The message the caller was told was not saved does not come back with the next save.
    expect((await store.get(created.id)).messages.map((m) => m.content)).toEqual(['kept']);
    expect(store.saveStatus()).toEqual({ writable: false, problem: expect.stringMatching(/the disk is full/) });
    failNext = false;
    await store.appendMessage(created.id, { role: 'user', content: 'later' });
    expect(store.saveStatus()).toEqual({ writable: true });
    await store.close();
    expect((await fixture.store().get(created.id)).messages.map((m) => m.content)).toEqual(['kept', 'later']);
  });

  it('saves two messages together or neither', async () => {
    let fail = false;
    const store = fixture.store({
      writeFile: (path, data) => {
        if (fail)
          return Promise.reject(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }));
        return writeFileAtomic(path, data);
      },
    });
    const created = await store.create('haiku-4', 'Pair');
    fail = true;
    await expect(
      store.appendMessages(created.id, [
        { role: 'user', content: 'question' },
        { role: 'assistant', content: '', status: 'streaming' },
      ]),
    ).rejects.toThrow(/ENOSPC/);
    expect((await store.get(created.id)).messages).toEqual([]);
  });

  it('lists every readable conversation, read-only, when the index cannot be rewritten at start', async () => {
    const store = fixture.store();
    const first = await store.create('haiku-4', 'First of two');
    const second = await store.create('haiku-4', 'Second of two');
    await store.close();
    await rm(join(fixture.dir, 'index.bin'));
    const full = fixture.store({
      writeFile: () => Promise.reject(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })),
    });
    expect((await full.list()).map((c) => c.id).sort()).toEqual([first.id, second.id].sort());
    expect((await full.get(first.id)).title).toBe('First of two');
    expect(full.saveStatus()).toEqual({ writable: false, problem: expect.stringMatching(/cannot save.*disk is full/) });
  });

  it('marks a reply left streaming by a previous run as cut off, keeping its text', async () => {
    const store = fixture.store();
    const created = await store.create('haiku-4');
    const reply = await store.appendMessage(created.id, {
      role: 'assistant',
      content: 'half a rep',
      status: 'streaming',
    });
    await store.close();

    const loaded = await fixture.store().get(created.id);
    expect(loaded.messages[0]).toMatchObject({ id: reply.id, content: 'half a rep', status: 'error' });
    expect(loaded.messages[0]?.error?.message).toMatch(/cut off when Clearance closed/);
  });
});

describe('ConversationStore corrupt files', () => {
  it('sets aside a damaged file found at start and reports it, while the others load', async () => {
    const store = fixture.store();
    const good = await store.create('haiku-4', 'Good one');
    const flipped = await store.create('haiku-4', 'Flipped byte');
    const truncated = await store.create('haiku-4', 'Truncated');
    await store.close();
    const flippedPath = join(fixture.dir, `${flipped.id}.conv`);
    await writeFile(flippedPath, flipByte(await readFile(flippedPath), 40));
    await writeFile(join(fixture.dir, `${truncated.id}.conv`), Buffer.from('CL'));

    const reopened = fixture.store();
    const reports: SetAsideFile[] = [];
    reopened.onDidSetAside((file) => reports.push(file));
    expect((await reopened.list()).map((s) => s.title)).toEqual(['Good one']);
    expect((await reopened.get(good.id)).title).toBe('Good one');
    expect(reports.map((r) => r.file).sort()).toEqual([`${flipped.id}.conv`, `${truncated.id}.conv`].sort());
    expect(reports.find((r) => r.file.startsWith(flipped.id))?.reason).toMatch(/integrity check/);
    expect(reports.find((r) => r.file.startsWith(truncated.id))?.reason).toMatch(/not in a format/);
    for (const report of reports) expect(existsSync(report.movedTo)).toBe(true);
    expect(existsSync(flippedPath)).toBe(false);
  });

  it('sets aside a file that went bad after start when it is opened, and keeps serving the others', async () => {
    const store = fixture.store();
    const good = await store.create('haiku-4', 'Good one');
    const bad = await store.create('haiku-4', 'Silently rotten');
    await store.close();

    const reopened = fixture.store();
    const changes: string[][] = [];
    reopened.onDidChange((change) => changes.push([...change.ids]));
    expect(await reopened.list()).toHaveLength(2);
    const badPath = join(fixture.dir, `${bad.id}.conv`);
    await writeFile(badPath, flipByte(await readFile(badPath), 60));

    await expect(reopened.get(bad.id)).rejects.toMatchObject({
      error: { code: 'NOT_FOUND', message: expect.stringMatching(/set aside.*integrity check/) },
    });
    expect(reopened.unreadableFiles().map((f) => f.file)).toEqual([`${bad.id}.conv`]);
    expect((await reopened.list()).map((s) => s.id)).toEqual([good.id]);
    expect((await reopened.get(good.id)).title).toBe('Good one');
    expect(changes).toContainEqual([bad.id]);
  });

  it('sets aside a file whose decrypted content is not a conversation', async () => {
    const store = fixture.store();
    const created = await store.create('haiku-4', 'Will be replaced');
    await store.close();
    const { DataKey } = await import('./sealedFile');
    const key = DataKey.unwrap(await readFile(join(fixture.dir, 'data-key.bin')), fixture.secrets());
    const sealed = key.seal(Buffer.from('{"v":1,"conversation":{"id":42}}'), `clearance:conversation:v1:${created.id}`);
    await writeFile(join(fixture.dir, `${created.id}.conv`), sealed);

    const reopened = fixture.store();
    expect(await reopened.list()).toEqual([]);
    expect(reopened.unreadableFiles()[0]?.reason).toMatch(/not a conversation Clearance understands/);
  });
});

describe('ConversationStore index', () => {
  async function threeConversations() {
    const store = fixture.store();
    const ids: string[] = [];
    for (const title of ['Alpha', 'Beta', 'Gamma']) {
      const created = await store.create('haiku-4', title);
      await store.appendMessage(created.id, { role: 'user', content: `Body of ${title}` });
      ids.push(created.id);
      fixture.clock.advance(1000);
    }
    const listed = await store.list();
    await store.close();
    return { ids, listed };
  }

  it('rebuilds a missing index from the conversation files', async () => {
    const { listed } = await threeConversations();
    await rm(join(fixture.dir, 'index.bin'));
    const reopened = fixture.store();
    expect(await reopened.list()).toEqual(listed);
    expect(await reopened.list('body of beta')).toHaveLength(1);
    await reopened.flush();
    expect(existsSync(join(fixture.dir, 'index.bin'))).toBe(true);
  });

  it('rebuilds a damaged index without setting aside any conversation', async () => {
    const { listed } = await threeConversations();
    await writeFile(join(fixture.dir, 'index.bin'), randomBytes(200));
    const reopened = fixture.store();
    expect(await reopened.list()).toEqual(listed);
    expect(reopened.unreadableFiles()).toEqual([]);
  });

  it('picks up a conversation saved after the index was last written', async () => {
    const store = fixture.store({ indexWriteDelayMs: 60_000 });
    const first = await store.create('haiku-4', 'Indexed');
    await store.flush();
    const indexBefore = await readFile(join(fixture.dir, 'index.bin'));
    const second = await store.create('haiku-4', 'Saved after the index');
    await store.appendMessage(first.id, { role: 'user', content: 'added later' });
    expect(Buffer.compare(await readFile(join(fixture.dir, 'index.bin')), indexBefore)).toBe(0);

    const reopened = fixture.store();
    const listed = await reopened.list();
    expect(listed.map((s) => s.id).sort()).toEqual([first.id, second.id].sort());
    expect(listed.find((s) => s.id === first.id)?.messageCount).toBe(1);
  });
});

describe('ConversationStore search', () => {
  it('finds conversations by title or message text, case-insensitively, with a snippet around the hit', async () => {
    const store = fixture.store();
    const a = await store.create('haiku-4', 'Attention sinks');
    await store.appendMessage(a.id, { role: 'user', content: 'Unrelated opening line.' });
    await store.appendMessage(a.id, {
      role: 'assistant',
      content: `${'Padding words before the hit. '.repeat(5)}The KV-Cache layout matters for throughput here. ${'Trailing words after the hit. '.repeat(8)}`,
    });
    fixture.clock.advance(1000);
    const b = await store.create('haiku-4', 'Layout of the kv-cache pages');
    fixture.clock.advance(1000);
    await store.create('haiku-4', 'Nothing relevant');

    const found = await store.list('kv-CACHE');
    expect(found.map((s) => s.id)).toEqual([b.id, a.id]);
    const snippet = found.find((s) => s.id === a.id)?.snippet ?? '';
    expect(snippet).toContain('KV-Cache layout');
    expect(snippet.startsWith('…')).toBe(true);
    expect(snippet.endsWith('…')).toBe(true);
    expect(snippet.length).toBeLessThan(200);
    expect(found.find((s) => s.id === b.id)?.snippet).toBeUndefined();
    expect(await store.list('zebra')).toEqual([]);
    expect(await store.list('   ')).toHaveLength(3);
  });

  it('treats the query as literal text, not a pattern', async () => {
    const store = fixture.store();
    const created = await store.create('haiku-4', 'Regex');
    await store.appendMessage(created.id, { role: 'user', content: 'match a.b* literally' });
    expect(await store.list('a.b*')).toHaveLength(1);
    expect(await store.list('a.bbb')).toHaveLength(0);
  });

  it('searches text streamed but not yet written', async () => {
    const store = fixture.store({ flushIntervalMs: 60_000 });
    const created = await store.create('haiku-4');
    const reply = await store.appendMessage(created.id, { role: 'assistant', content: '', status: 'streaming' });
    store.appendDelta(created.id, reply.id, 'fresh platypus');
    expect((await store.list('platypus')).map((s) => s.id)).toEqual([created.id]);
  });
});

describe('ConversationStore editing', () => {
  it('lists newest first, renames without reordering, and truncates from a message', async () => {
    const store = fixture.store();
    const older = await store.create('haiku-4');
    expect(older.title).toBe(DEFAULT_TITLE);
    fixture.clock.advance(1000);
    const newer = await store.create('haiku-4', 'Newer');
    fixture.clock.advance(1000);
    const renamed = await store.rename(older.id, '  Renamed   older ');
    expect(renamed.title).toBe('Renamed older');
    expect((await store.list()).map((s) => s.id)).toEqual([newer.id, older.id]);

    const m1 = await store.appendMessage(newer.id, { role: 'user', content: 'one' });
    const m2 = await store.appendMessage(newer.id, { role: 'assistant', content: 'two' });
    await store.appendMessage(newer.id, { role: 'user', content: 'three' });
    expect(await store.truncateFrom(newer.id, m2.id)).toBe(2);
    expect((await store.get(newer.id)).messages.map((m) => m.id)).toEqual([m1.id]);
    await expect(store.truncateFrom(newer.id, m2.id)).rejects.toMatchObject({ error: { code: 'NOT_FOUND' } });
    await expect(store.rename(newer.id, '   ')).rejects.toMatchObject({ error: { code: 'BAD_REQUEST' } });
  });

  it('updates and clears message fields', async () => {
    const store = fixture.store();
    const created = await store.create('haiku-4');
    const reply = await store.appendMessage(created.id, { role: 'assistant', content: 'x', status: 'streaming' });
    await store.updateMessage(created.id, reply.id, {
      status: 'error',
      error: { code: 'GATEWAY_UNAVAILABLE', message: 'lost' },
      decisionId: 'd1',
    });
    const cleared = await store.updateMessage(created.id, reply.id, { status: 'complete', error: undefined });
    expect(cleared).toEqual({ ...reply, status: 'complete', decisionId: 'd1' });
    await store.close();
    expect((await fixture.store().get(created.id)).messages[0]).toEqual(cleared);
  });

  it('answers NOT_FOUND for unknown ids and ids that could escape the folder', async () => {
    const store = fixture.store();
    for (const id of ['missing', '../data-key', '..', 'a/b', 'index']) {
      await expect(store.get(id)).rejects.toMatchObject({ error: { code: 'NOT_FOUND' } });
    }
    expect(await store.delete('../data-key')).toBe(false);
    expect(existsSync(join(fixture.dir, 'data-key.bin'))).toBe(true);
  });

  it('coalesces streamed text into a few writes and writes it all on flush', async () => {
    let writes = 0;
    const counting: AtomicWrite = (path, data) => {
      if (path.endsWith('.conv')) writes++;
      return writeFileAtomic(path, data);
    };
    const store = fixture.store({ writeFile: counting, flushIntervalMs: 40 });
    const created = await store.create('haiku-4');
    const reply = await store.appendMessage(created.id, { role: 'assistant', content: '', status: 'streaming' });
    writes = 0;
    for (let i = 0; i < 500; i++) expect(store.appendDelta(created.id, reply.id, `t${i} `)).toBe(true);
    expect(writes).toBe(0);
    for (let i = 0; i < 300 && writes === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(writes).toBe(1);
    store.appendDelta(created.id, reply.id, 'end');
    await store.flush(created.id);
    expect(writes).toBe(2);
    const reopened = await fixture.store().get(created.id);
    expect(reopened.messages[0]?.content).toBe(`${Array.from({ length: 500 }, (_, i) => `t${i} `).join('')}end`);
  });
});

describe('ConversationStore delete and restore', () => {
  it('hides a deleted conversation and brings it back on restore, with text written just before', async () => {
    const store = fixture.store({ flushIntervalMs: 60_000 });
    const created = await store.create('haiku-4', 'Undo me');
    const reply = await store.appendMessage(created.id, { role: 'assistant', content: '', status: 'streaming' });
    store.appendDelta(created.id, reply.id, 'pending text');
    expect(await store.delete(created.id)).toBe(true);
    expect(await store.list()).toEqual([]);
    await expect(store.get(created.id)).rejects.toMatchObject({ error: { code: 'NOT_FOUND' } });
    expect(store.appendDelta(created.id, reply.id, 'late')).toBe(false);
    expect(existsSync(join(fixture.dir, `${created.id}.conv`))).toBe(false);
    expect(await store.delete(created.id)).toBe(false);

    expect(await store.restore(created.id)).toBe(true);
    expect((await store.list()).map((s) => s.title)).toEqual(['Undo me']);
    expect((await store.get(created.id)).messages[0]?.content).toBe('pending text');
    expect(await store.restore(created.id)).toBe(false);
  });

  it('keeps a deleted conversation restorable across a restart and purges it after the retention', async () => {
    const store = fixture.store({ trashRetentionMs: 60_000 });
    const created = await store.create('haiku-4', 'Trash me');
    await store.delete(created.id);
    await store.close();

    expect(await fixture.store({ trashRetentionMs: 60_000 }).restore(created.id)).toBe(true);
    const again = fixture.store({ trashRetentionMs: 60_000 });
    await again.delete(created.id);
    fixture.clock.advance(60_001);
    expect(await again.purgeDeleted()).toBe(1);
    expect(await again.restore(created.id)).toBe(false);
    expect((await fixture.files()).filter((f) => f.startsWith('trash/'))).toEqual([]);
  });
});

describe('ConversationStore export', () => {
  it('exports Markdown with speakers, models and interrupted replies noted', async () => {
    const store = fixture.store();
    const created = await store.create('haiku-4', 'Export: KV cache / notes');
    await store.appendMessage(created.id, { role: 'user', content: 'Explain `paged attention`.', model: 'haiku-4' });
    await store.appendMessage(created.id, {
      role: 'assistant',
      content: 'It splits the cache\n\n```python\nprint(1)\n```',
      model: 'haiku-4',
      status: 'stopped',
    });
    const exported = await store.exportMarkdown(created.id);
    expect(exported.fileName).toBe('export-kv-cache-notes-2026-11-26.md');
    expect(exported.content).toMatch(/^# Export: KV cache \/ notes\n/);
    expect(exported.content).toContain('## You\n');
    expect(exported.content).toContain('## Assistant (haiku-4)\n');
    expect(exported.content).toContain('```python\nprint(1)\n```');
    expect(exported.content).toContain('_Reply stopped before it was finished._');
    expect(exported.content.indexOf('paged attention')).toBeLessThan(exported.content.indexOf('It splits'));
  });

  it('exports JSON that parses back to the same conversation', async () => {
    const store = fixture.store();
    const created = await store.create('haiku-4', 'Json');
    await store.appendMessage(created.id, { role: 'user', content: 'hello "quotes"\n' });
    const exported = await store.exportJson(created.id);
    expect(exported.fileName).toBe('json-2026-11-26.json');
    const parsed = JSON.parse(exported.content) as { format: string; version: number; conversation: unknown };
    expect(parsed.format).toBe('clearance.conversation');
    expect(parsed.version).toBe(1);
    expect(parsed.conversation).toEqual(await store.get(created.id));
  });
});

describe('ConversationStore large conversations', () => {
  it('saves and loads a 10,000-message conversation', async () => {
    const store = fixture.store();
    const writeStart = performance.now();
    const seeded = await seedConversation(store, { messages: 10_000, model: 'haiku-4', endsAt: fixture.clock.now() });
    const writeMs = performance.now() - writeStart;
    await store.close();
    const { size } = await stat(join(fixture.dir, `${seeded.id}.conv`));

    const reopened = fixture.store();
    const readStart = performance.now();
    const loaded = await reopened.get(seeded.id);
    const readMs = performance.now() - readStart;

    expect(seeded.messageCount).toBe(10_000);
    expect(loaded.messages).toHaveLength(10_000);
    expect(loaded.messages[0]?.role).toBe('user');
    expect(loaded.messages[9_999]?.content).toMatch(/^Message 10000: /);
    expect(loaded.messages[1]?.content).toContain('```python');
    expect((await reopened.list())[0]?.messageCount).toBe(10_000);
    expect((await reopened.list('Message 9999:'))[0]?.snippet).toContain('Message 9999:');

    const appendStart = performance.now();
    await reopened.appendMessage(seeded.id, { role: 'user', content: 'one more' });
    const appendMs = performance.now() - appendStart;
    console.log(
      `10,000 messages, ${(size / 1024 / 1024).toFixed(1)} MiB on disk: write ${writeMs.toFixed(0)} ms, ` +
        `cold read ${readMs.toFixed(0)} ms, append+save ${appendMs.toFixed(0)} ms`,
    );
  });
});
