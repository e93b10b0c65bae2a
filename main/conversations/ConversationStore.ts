import { randomUUID } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { ChatMessage, Conversation, type ConversationSummary } from '../../shared/ipc';
import { Emitter } from '../events';
import { IpcFailure } from '../ipc/dispatch';
import type { Clock, SecretStore } from '../platform';
import {
  removeTempFiles,
  syncDirectory,
  writeFileAtomic,
  type AtomicWrite,
  type FileStamp,
} from '../storage/atomicFile';
import { conversationToJson, conversationToMarkdown, type ExportedConversation } from './export';
import { snippetAround, textMatcher } from './search';
import { DataKey, UnreadableDataError } from './sealedFile';

/** The title a conversation has until the first message names it. */
export const DEFAULT_TITLE = 'New chat';

const FILE_EXTENSION = '.conv';
const INDEX_FILE = 'index.bin';
const KEY_FILE = 'data-key.bin';
const CORRUPT_DIR = 'corrupt';
const TRASH_DIR = 'trash';
const INDEX_PURPOSE = 'clearance:index:v1';
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
const TRASH_NAME = /^([A-Za-z0-9][A-Za-z0-9_-]{0,127})\.(\d+)\.conv$/;
const DAY_MS = 24 * 60 * 60 * 1000;
const MAX_FLUSH_INTERVAL_MS = 2000;

/** Options for {@link ConversationStore}. */
export interface ConversationStoreOptions {
  /** The folder that holds the store (e.g. `<userData>/conversations`); created if missing. */
  readonly dir: string;
  readonly secrets: SecretStore;
  readonly clock: Clock;
  /**
   * The person the store belongs to (main/profile/personId.ts). Bound into the data key and every
   * file, so the files of one person cannot be opened in another person's store.
   */
  readonly account?: string;
  /** How long streamed text may sit in memory before it is written (default 250 ms). */
  readonly flushIntervalMs?: number;
  /** How long index updates are gathered before the index is rewritten (default 1 s). */
  readonly indexWriteDelayMs?: number;
  /** How long a deleted conversation can be restored before it is purged (default 7 days). */
  readonly trashRetentionMs?: number;
  /** How many conversations are kept decrypted in memory besides the ones being written (default 4). */
  readonly cacheSize?: number;
  readonly log?: (message: string, error?: unknown) => void;
  /** Replaces {@link writeFileAtomic}, to simulate crashes and full disks in tests. */
  readonly writeFile?: AtomicWrite;
}

/** Which conversations changed, for the sidebar to refresh. */
export interface ConversationChange {
  readonly ids: readonly string[];
}

/** A file the store could not read and moved to `corrupt/`, with why in plain words. */
export interface SetAsideFile {
  readonly file: string;
  readonly movedTo: string;
  readonly reason: string;
  readonly at: string;
}

/** A message to add; the store fills in `id` and `createdAt` when they are not given. */
export type NewMessage = Omit<ChatMessage, 'id' | 'createdAt'> & { readonly id?: string; readonly createdAt?: string };

/** The parts of a message that change after it is added (streaming, stop, error, audit id). */
export type MessagePatch = Partial<
  Pick<ChatMessage, 'content' | 'status' | 'error' | 'decisionId' | 'model' | 'usage'>
>;

/** Message fields a patch may set or, with `undefined`, clear. */
const OPTIONAL_MESSAGE_FIELDS = ['status', 'error', 'decisionId', 'model', 'usage'] as const;

const StoredConversation = z.object({ v: z.literal(1), conversation: Conversation });

const IndexEntry = z.object({
  id: z.string(),
  title: z.string(),
  model: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  messageCount: z.number().int(),
  /** Every message's text, for search without decrypting each conversation. */
  text: z.string(),
  size: z.number(),
  mtimeMs: z.number(),
});
type IndexEntry = z.infer<typeof IndexEntry>;
type IndexSummary = Omit<IndexEntry, 'size' | 'mtimeMs'>;
const StoredIndex = z.object({ v: z.literal(1), entries: z.array(IndexEntry) });

interface LoadedConversation {
  readonly conversation: Conversation;
  dirty: boolean;
  removed: boolean;
  timer: NodeJS.Timeout | undefined;
  queue: Promise<void>;
  pendingWrites: number;
  lastUsed: number;
  /** How long the last write took, to space out coalesced writes of large conversations. */
  lastWriteMs: number;
}

/** True when `id` could name a conversation file (no path separators, dots or oddities). */
export function isConversationId(id: string): boolean {
  return ID_PATTERN.test(id);
}

function notFound(): IpcFailure {
  return new IpcFailure('NOT_FOUND', 'That conversation no longer exists.');
}

function summarize(conversation: Conversation): IndexSummary {
  return {
    id: conversation.id,
    title: conversation.title,
    model: conversation.model,
    createdAt: conversation.createdAt,
    updatedAt: conversation.updatedAt,
    messageCount: conversation.messages.length,
    text: conversation.messages.map((message) => message.content).join('\n\n'),
  };
}

function toSummary(entry: IndexSummary, snippet?: string): ConversationSummary {
  const summary: ConversationSummary = {
    id: entry.id,
    title: entry.title,
    model: entry.model,
    updatedAt: entry.updatedAt,
    messageCount: entry.messageCount,
  };
  return snippet === undefined ? summary : { ...summary, snippet };
}

function isStreaming(conversation: Conversation): boolean {
  return conversation.messages.at(-1)?.status === 'streaming';
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'ENOENT';
}

/** Why a write failed, as a sentence for the person whose work is not being saved. */
export function describeWriteFailure(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  const why =
    code === 'ENOSPC' || code === 'EDQUOT'
      ? 'the disk is full'
      : code === 'EROFS' || code === 'EACCES' || code === 'EPERM'
        ? 'the folder Clearance saves to cannot be written'
        : 'writing to the disk failed';
  return `Clearance cannot save your conversations: ${why}. What you see stays open until you close Clearance; once there is room again (or IT has fixed the folder), saving resumes with your next change.`;
}

function conversationPurpose(id: string): string {
  return `clearance:conversation:v1:${id}`;
}

/**
 * Conversations on disk: one AES-256-GCM file per conversation plus an encrypted index for the list and search.
 *
 * The data key is generated once and kept only wrapped by the OS secret store. Every file is
 * replaced atomically (temporary file, fsync, rename, fsync of the folder), so a crash or power
 * loss leaves either the old or the new version. A file that cannot be read is moved to
 * `corrupt/` and reported through {@link ConversationStore.onDidSetAside}; the rest still load.
 * The index is a cache: when it is missing, damaged or older than a file, it is rebuilt from the files.
 *
 * Streamed text goes through {@link ConversationStore.appendDelta}, which only marks the
 * conversation dirty; it is written at most every `flushIntervalMs` and on {@link ConversationStore.flush}.
 * Deleting moves the file to `trash/`, from which {@link ConversationStore.restore} brings it back
 * until it is purged after `trashRetentionMs`.
 */
export class ConversationStore {
  private readonly changed = new Emitter<ConversationChange>();
  private readonly setAsideEvents = new Emitter<SetAsideFile>();
  /** Fires after conversations are created, changed durably, renamed, deleted, restored or set aside. */
  readonly onDidChange = this.changed.event;
  /** Fires when a file could not be read and was moved to `corrupt/`. */
  readonly onDidSetAside = this.setAsideEvents.event;

  private readonly dir: string;
  private readonly trashDir: string;
  private readonly corruptDir: string;
  private readonly flushIntervalMs: number;
  private readonly indexWriteDelayMs: number;
  private readonly trashRetentionMs: number;
  private readonly cacheSize: number;
  private readonly log: (message: string, error?: unknown) => void;
  private readonly writeFile: AtomicWrite;

  private readonly index = new Map<string, IndexEntry>();
  private readonly loaded = new Map<string, LoadedConversation>();
  private readonly loading = new Map<string, Promise<LoadedConversation>>();
  private readonly writtenThisSession = new Set<string>();
  private readonly setAsideFiles: SetAsideFile[] = [];
  private opening: Promise<void> | undefined;
  private key: DataKey | undefined;
  private indexDirty = false;
  private indexTimer: NodeJS.Timeout | undefined;
  private indexQueue: Promise<void> = Promise.resolve();
  private useCounter = 0;
  private closed = false;
  /** Why the last write failed, in plain words; cleared by the next write that succeeds. */
  private saveProblem: string | undefined;

  constructor(private readonly options: ConversationStoreOptions) {
    this.dir = options.dir;
    this.trashDir = join(options.dir, TRASH_DIR);
    this.corruptDir = join(options.dir, CORRUPT_DIR);
    this.flushIntervalMs = options.flushIntervalMs ?? 250;
    this.indexWriteDelayMs = options.indexWriteDelayMs ?? 1000;
    this.trashRetentionMs = options.trashRetentionMs ?? 7 * DAY_MS;
    this.cacheSize = Math.max(1, options.cacheSize ?? 4);
    this.log = options.log ?? ((message, error) => console.warn(message, error ?? ''));
    this.writeFile = options.writeFile ?? ((path, data) => writeFileAtomic(path, data));
  }

  /**
   * Reads the key and the index, reconciles the index with the files, cleans up after a crash, purges old trash.
   *
   * Idempotent; every other method opens the store first, so calling this early only surfaces problems sooner.
   * Rejects only when no OS secret store is available or the folder cannot be used.
   */
  open(): Promise<void> {
    this.opening ??= this.openNow().catch((error: unknown) => {
      this.opening = undefined;
      throw error;
    });
    return this.opening;
  }

  /**
   * Whether saving works: `problem` says, in plain words, why the last write failed (a full disk, a
   * folder that cannot be written). Conversations stay readable meanwhile.
   */
  saveStatus(): { readonly writable: boolean; readonly problem?: string } {
    return this.saveProblem === undefined ? { writable: true } : { writable: false, problem: this.saveProblem };
  }

  /** Files set aside as unreadable since the store was created, for diagnostics. */
  unreadableFiles(): readonly SetAsideFile[] {
    return [...this.setAsideFiles];
  }

  /**
   * Conversations newest first; with a query, only those whose title or text contains it (case-insensitive),
   * each text hit with a snippet around it.
   */
  async list(query?: string): Promise<ConversationSummary[]> {
    await this.open();
    const matches = textMatcher(query);
    const entries = [...this.index.values()]
      .map((entry): IndexSummary => {
        const live = this.loaded.get(entry.id);
        return live?.dirty ? summarize(live.conversation) : entry;
      })
      .sort((a, b) => b.updatedAt.localeCompare(a.updatedAt) || a.id.localeCompare(b.id));
    if (!matches) return entries.map((entry) => toSummary(entry));
    const found: ConversationSummary[] = [];
    for (const entry of entries) {
      const inText = matches(entry.text);
      if (inText) found.push(toSummary(entry, snippetAround(entry.text, inText)));
      else if (matches(entry.title)) found.push(toSummary(entry));
    }
    return found;
  }

  /** The whole conversation, including text still waiting to be written. */
  async get(id: string): Promise<Conversation> {
    const loaded = await this.acquire(id);
    return structuredClone(loaded.conversation);
  }

  /** Starts an empty conversation with `model`. */
  async create(model: string, title?: string): Promise<Conversation> {
    const now = this.isoNow();
    const conversation: Conversation = {
      id: randomUUID(),
      title: title === undefined ? DEFAULT_TITLE : this.checkTitle(title),
      model: this.checkModel(model),
      createdAt: now,
      updatedAt: now,
      messages: [],
    };
    return this.insert(conversation);
  }

  /** Saves a whole conversation as given (JSON import, test seeding); its id must be new. */
  async importConversation(conversation: Conversation): Promise<Conversation> {
    const parsed = Conversation.safeParse(conversation);
    if (!parsed.success) {
      throw new IpcFailure('BAD_REQUEST', 'That is not a conversation Clearance can store.', {
        issues: parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`),
      });
    }
    if (!isConversationId(parsed.data.id)) throw new IpcFailure('BAD_REQUEST', 'That conversation id is not valid.');
    return this.insert(parsed.data);
  }

  /** Adds a message at the end and saves; when the save fails, the message is not kept. */
  async appendMessage(conversationId: string, message: NewMessage): Promise<ChatMessage> {
    const [added] = await this.appendMessages(conversationId, [message]);
    if (!added) throw new Error('appendMessages answered no message');
    return added;
  }

  /**
   * Adds messages at the end in one save: all are kept, or (when the save fails) none is.
   *
   * A message the caller was told could not be saved must not come back later as a ghost, written
   * with the next change once the disk has room again.
   */
  async appendMessages(conversationId: string, messages: readonly NewMessage[]): Promise<ChatMessage[]> {
    const added: ChatMessage[] = [];
    for (const message of messages) {
      const parsed = ChatMessage.safeParse({
        ...message,
        id: message.id ?? randomUUID(),
        createdAt: message.createdAt ?? this.isoNow(),
      });
      if (!parsed.success) throw new IpcFailure('BAD_REQUEST', 'That message cannot be stored.');
      added.push(parsed.data);
    }
    const ids = new Set(added.map((message) => message.id));
    if (ids.size !== added.length) throw new IpcFailure('BAD_REQUEST', 'Two messages have the same id.');
    return this.mutate(
      conversationId,
      true,
      (conversation) => {
        if (conversation.messages.some((existing) => ids.has(existing.id))) {
          throw new IpcFailure('BAD_REQUEST', 'A message with that id is already in the conversation.');
        }
        conversation.messages.push(...added);
        return structuredClone(added);
      },
      (conversation) => {
        conversation.messages = conversation.messages.filter((message) => !ids.has(message.id));
      },
    );
  }

  /**
   * Changes a message; saves before answering unless `durable` is false, in which case the write is coalesced.
   */
  async updateMessage(
    conversationId: string,
    messageId: string,
    patch: MessagePatch,
    options: { readonly durable?: boolean } = {},
  ): Promise<ChatMessage> {
    const apply = (conversation: Conversation) => {
      const message = this.findMessage(conversation, messageId);
      if (patch.content !== undefined) message.content = patch.content;
      for (const key of OPTIONAL_MESSAGE_FIELDS) {
        if (!(key in patch)) continue;
        const value = patch[key];
        if (value === undefined) delete message[key];
        else Object.assign(message, { [key]: value });
      }
      return structuredClone(message);
    };
    if (options.durable !== false) return this.mutate(conversationId, true, apply);
    const loaded = await this.acquire(conversationId);
    const updated = apply(loaded.conversation);
    this.touch(loaded);
    this.scheduleFlush(loaded);
    return updated;
  }

  /**
   * Appends streamed text to a message in memory; written within `flushIntervalMs`.
   *
   * Answers false (and does nothing) when the conversation is not open in memory, was deleted, or
   * lacks the message, so a stream racing a delete cannot bring the conversation back.
   */
  appendDelta(conversationId: string, messageId: string, delta: string): boolean {
    const loaded = this.loaded.get(conversationId);
    if (!loaded || loaded.removed) return false;
    const messages = loaded.conversation.messages;
    let message: ChatMessage | undefined;
    for (let i = messages.length - 1; i >= 0; i--) {
      if (messages[i]?.id === messageId) {
        message = messages[i];
        break;
      }
    }
    if (!message) return false;
    message.content += delta;
    this.touch(loaded);
    this.scheduleFlush(loaded);
    return true;
  }

  /** Removes `messageId` and every message after it (edit and resend, regenerate); answers how many went. */
  async truncateFrom(conversationId: string, messageId: string): Promise<number> {
    let removed: ChatMessage[] = [];
    return this.mutate(
      conversationId,
      true,
      (conversation) => {
        const at = conversation.messages.findIndex((message) => message.id === messageId);
        if (at === -1) throw new IpcFailure('NOT_FOUND', 'That message is no longer in the conversation.');
        removed = conversation.messages.splice(at);
        return removed.length;
      },
      (conversation) => {
        conversation.messages.push(...removed);
      },
    );
  }

  /** Renames a conversation (it keeps its place in the list). */
  async rename(conversationId: string, title: string): Promise<ConversationSummary> {
    const checked = this.checkTitle(title);
    return this.mutate(conversationId, false, (conversation) => {
      conversation.title = checked;
      return toSummary(summarize(conversation));
    });
  }

  /** Records the model the conversation continues with (e.g. after its model became unavailable). */
  async setModel(conversationId: string, model: string): Promise<void> {
    const checked = this.checkModel(model);
    await this.mutate(conversationId, false, (conversation) => {
      conversation.model = checked;
    });
  }

  /**
   * Moves a conversation to the trash (after writing what is pending); answers false when there was none.
   */
  async delete(conversationId: string): Promise<boolean> {
    await this.open();
    this.assertOpen();
    if (!isConversationId(conversationId)) return false;
    const entry = this.index.get(conversationId);
    if (!entry) return false;
    const loaded = this.loaded.get(conversationId);
    if (loaded) {
      if (loaded.dirty || loaded.timer) {
        await this.persist(loaded).catch((error: unknown) =>
          this.log(`Could not save conversation ${conversationId} before deleting it`, error),
        );
      }
      loaded.removed = true;
      this.clearFlush(loaded);
      await loaded.queue;
      this.loaded.delete(conversationId);
    }
    this.index.delete(conversationId);
    const deletedAt = this.options.clock.now();
    try {
      await rename(this.pathOf(conversationId), join(this.trashDir, `${conversationId}.${deletedAt}${FILE_EXTENSION}`));
    } catch (error) {
      this.index.set(conversationId, entry);
      throw error;
    }
    await syncDirectory(this.dir);
    await syncDirectory(this.trashDir);
    this.scheduleIndexWrite();
    this.changed.fire({ ids: [conversationId] });
    return true;
  }

  /** Brings back the most recently deleted copy of a conversation; answers false when there is none. */
  async restore(conversationId: string): Promise<boolean> {
    await this.open();
    this.assertOpen();
    if (!isConversationId(conversationId) || this.index.has(conversationId)) return false;
    const copies = (await readdir(this.trashDir))
      .map((name) => TRASH_NAME.exec(name))
      .filter((match): match is RegExpExecArray => match !== null && match[1] === conversationId)
      .sort((a, b) => Number(b[2]) - Number(a[2]));
    const latest = copies[0];
    if (!latest) return false;
    await rename(join(this.trashDir, latest[0]), this.pathOf(conversationId));
    await syncDirectory(this.trashDir);
    await syncDirectory(this.dir);
    await this.indexFile(conversationId);
    this.changed.fire({ ids: [conversationId] });
    return this.index.has(conversationId);
  }

  /** Deletes trashed conversations older than the retention; answers how many were purged. */
  async purgeDeleted(): Promise<number> {
    await this.open();
    return this.purgeTrash();
  }

  /** The conversation as a Markdown file. */
  async exportMarkdown(conversationId: string): Promise<ExportedConversation> {
    return conversationToMarkdown(await this.get(conversationId), this.isoNow());
  }

  /** The conversation as a JSON file. */
  async exportJson(conversationId: string): Promise<ExportedConversation> {
    return conversationToJson(await this.get(conversationId), this.isoNow());
  }

  /** Writes everything pending (one conversation, or all) and the index. */
  async flush(conversationId?: string): Promise<void> {
    await this.open();
    const targets =
      conversationId === undefined
        ? [...this.loaded.values()]
        : [this.loaded.get(conversationId)].filter((loaded) => loaded !== undefined);
    await Promise.all(
      targets.map(async (loaded) => {
        if (loaded.dirty || loaded.timer) await this.persist(loaded);
        await loaded.queue;
      }),
    );
    if (this.indexDirty) await this.writeIndexNow();
  }

  /** Writes everything pending and stops; later calls fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.opening) {
      await this.opening.catch(() => {});
      if (this.key) await this.flush();
    }
    this.closed = true;
    if (this.indexTimer) clearTimeout(this.indexTimer);
    this.indexTimer = undefined;
    for (const loaded of this.loaded.values()) this.clearFlush(loaded);
    this.changed.dispose();
    this.setAsideEvents.dispose();
  }

  private async openNow(): Promise<void> {
    const { secrets } = this.options;
    if (!secrets.isAvailable()) {
      throw new Error(
        'Conversations cannot be saved: this system offers no secure storage for the key that encrypts them. ' +
          'On Linux, install and unlock a keyring (GNOME Keyring or KWallet) and restart Clearance.',
      );
    }
    for (const dir of [this.dir, this.trashDir, this.corruptDir]) await mkdir(dir, { recursive: true, mode: 0o700 });
    await removeTempFiles(this.dir);
    await removeTempFiles(this.trashDir);
    this.key = await this.loadKey();
    const stored = await this.readIndex();
    let changed = stored === undefined;
    const names = (await readdir(this.dir)).filter((name) => name.endsWith(FILE_EXTENSION));
    for (const name of names) {
      const id = name.slice(0, -FILE_EXTENSION.length);
      if (!isConversationId(id)) {
        await this.moveAside(this.dir, name, 'its name is not one Clearance gives to conversation files');
        changed = true;
        continue;
      }
      const previous = stored?.get(id);
      const stamp = await stat(this.pathOf(id));
      if (previous && previous.size === stamp.size && previous.mtimeMs === stamp.mtimeMs) {
        this.index.set(id, previous);
      } else {
        changed = true;
        await this.indexFile(id);
      }
    }
    if (stored && [...stored.keys()].some((id) => !this.index.has(id))) changed = true;
    if (changed) {
      this.indexDirty = true;
      // A full disk must not hide every conversation: they are listed from memory, and saving is retried later.
      await this.writeIndexNow().catch((error: unknown) =>
        this.log('The conversations index could not be rewritten; conversations are shown read-only', error),
      );
    }
    await this.purgeTrash().catch((error: unknown) => this.log('Old deleted conversations could not be purged', error));
  }

  private async loadKey(): Promise<DataKey> {
    const { secrets } = this.options;
    const path = join(this.dir, KEY_FILE);
    let wrapped: Buffer | undefined;
    try {
      wrapped = await readFile(path);
    } catch (error) {
      if (!isMissing(error)) throw error;
    }
    if (wrapped) {
      try {
        return DataKey.unwrap(wrapped, secrets, this.options.account);
      } catch (error) {
        if (!(error instanceof UnreadableDataError)) throw error;
        await this.setAsideEverything(error.message);
      }
    }
    const key = DataKey.generate(this.options.account);
    await this.writeFile(path, key.wrap(secrets));
    return key;
  }

  /** Keeps every file of an unreadable key in one folder, so IT can recover them with the old OS keyring. */
  private async setAsideEverything(reason: string): Promise<void> {
    const folder = `key-${this.options.clock.now()}`;
    await mkdir(join(this.corruptDir, folder), { recursive: true, mode: 0o700 });
    const names = (await readdir(this.dir)).filter(
      (name) => name === KEY_FILE || name === INDEX_FILE || name.endsWith(FILE_EXTENSION),
    );
    for (const name of names) {
      await this.moveAside(this.dir, name, reason, folder, name.endsWith(FILE_EXTENSION));
    }
    for (const name of (await readdir(this.trashDir)).filter((n) => n.endsWith(FILE_EXTENSION))) {
      await this.moveAside(this.trashDir, name, reason, folder, true);
    }
  }

  private async moveAside(
    fromDir: string,
    name: string,
    reason: string,
    subfolder?: string,
    report = true,
  ): Promise<SetAsideFile> {
    const at = this.isoNow();
    const movedTo = subfolder
      ? join(this.corruptDir, subfolder, name)
      : join(this.corruptDir, `${at.replace(/[:.]/g, '-')}-${name}`);
    await rename(join(fromDir, name), movedTo);
    await syncDirectory(fromDir);
    const record: SetAsideFile = { file: name, movedTo, reason: `${name} could not be read: ${reason}`, at };
    if (report) {
      this.setAsideFiles.push(record);
      this.log(`Set aside ${name}: ${reason}`);
      this.setAsideEvents.fire(record);
    }
    return record;
  }

  private async readIndex(): Promise<Map<string, IndexEntry> | undefined> {
    let sealed: Buffer;
    try {
      sealed = await readFile(join(this.dir, INDEX_FILE));
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    try {
      const parsed = StoredIndex.parse(JSON.parse(this.requireKey().open(sealed, INDEX_PURPOSE).toString('utf8')));
      return new Map(parsed.entries.map((entry) => [entry.id, entry]));
    } catch (error) {
      this.log('The conversations index could not be read; rebuilding it from the conversation files', error);
      return undefined;
    }
  }

  /** Reads one file into the index; an unreadable one is set aside instead. */
  private async indexFile(id: string): Promise<void> {
    try {
      const conversation = await this.readConversation(id);
      const stamp = await stat(this.pathOf(id));
      this.index.set(id, { ...summarize(conversation), size: stamp.size, mtimeMs: stamp.mtimeMs });
      this.scheduleIndexWrite();
    } catch (error) {
      if (!(error instanceof UnreadableDataError)) throw error;
      this.index.delete(id);
      await this.moveAside(this.dir, this.fileOf(id), error.message);
    }
  }

  private async readConversation(id: string): Promise<Conversation> {
    const sealed = await readFile(this.pathOf(id));
    const plain = this.requireKey().open(sealed, conversationPurpose(id));
    let json: unknown;
    try {
      json = JSON.parse(plain.toString('utf8'));
    } catch {
      throw new UnreadableDataError('its content is not valid JSON');
    }
    const parsed = StoredConversation.safeParse(json);
    if (!parsed.success) {
      const first = parsed.error.issues[0];
      throw new UnreadableDataError(
        `its content is not a conversation Clearance understands (${first ? `${first.path.join('.')}: ${first.message}` : 'unknown'})`,
      );
    }
    if (parsed.data.conversation.id !== id) throw new UnreadableDataError('it holds a different conversation');
    return parsed.data.conversation;
  }

  /** The conversation in memory, loaded once even under concurrent calls. */
  private async acquire(id: string): Promise<LoadedConversation> {
    await this.open();
    for (;;) {
      this.assertOpen();
      const existing = this.loaded.get(id);
      if (existing) {
        existing.lastUsed = ++this.useCounter;
        return existing;
      }
      if (!isConversationId(id) || !this.index.has(id)) throw notFound();
      let pending = this.loading.get(id);
      if (!pending) {
        pending = this.load(id).finally(() => this.loading.delete(id));
        this.loading.set(id, pending);
      }
      const loaded = await pending;
      if (this.loaded.get(id) === loaded) {
        loaded.lastUsed = ++this.useCounter;
        return loaded;
      }
    }
  }

  private async load(id: string): Promise<LoadedConversation> {
    let conversation: Conversation;
    try {
      conversation = await this.readConversation(id);
    } catch (error) {
      if (!(error instanceof UnreadableDataError)) throw error;
      this.index.delete(id);
      this.scheduleIndexWrite();
      const record = await this.moveAside(this.dir, this.fileOf(id), error.message);
      this.changed.fire({ ids: [id] });
      throw new IpcFailure('NOT_FOUND', `This conversation could not be read and was set aside. ${record.reason}`);
    }
    if (!this.index.has(id)) throw notFound();
    const loaded: LoadedConversation = {
      conversation,
      dirty: false,
      removed: false,
      timer: undefined,
      queue: Promise.resolve(),
      pendingWrites: 0,
      lastUsed: ++this.useCounter,
      lastWriteMs: 0,
    };
    if (!this.writtenThisSession.has(id) && this.markInterrupted(conversation)) {
      loaded.dirty = true;
      this.scheduleFlush(loaded);
    }
    this.loaded.set(id, loaded);
    this.evict(id);
    return loaded;
  }

  /** A reply left `streaming` by an earlier run was cut off when the app stopped; say so. */
  private markInterrupted(conversation: Conversation): boolean {
    let marked = false;
    for (const message of conversation.messages) {
      if (message.status !== 'streaming') continue;
      message.status = 'error';
      message.error = {
        code: 'INTERNAL',
        message: 'This reply was cut off when Clearance closed. The part received was kept.',
      };
      marked = true;
    }
    return marked;
  }

  /** Drops idle decrypted conversations beyond the cache size, never `keep` or one being written. */
  private evict(keep: string): void {
    if (this.loaded.size <= this.cacheSize) return;
    const idle = [...this.loaded.entries()]
      .filter(([id, l]) => id !== keep && !l.dirty && !l.timer && l.pendingWrites === 0 && !isStreaming(l.conversation))
      .sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [id] of idle) {
      if (this.loaded.size <= this.cacheSize) break;
      this.loaded.delete(id);
    }
  }

  private async insert(conversation: Conversation): Promise<Conversation> {
    await this.open();
    this.assertOpen();
    if (this.index.has(conversation.id) || this.loaded.has(conversation.id)) {
      throw new IpcFailure('BAD_REQUEST', 'A conversation with that id already exists.');
    }
    const loaded: LoadedConversation = {
      conversation,
      dirty: true,
      removed: false,
      timer: undefined,
      queue: Promise.resolve(),
      pendingWrites: 0,
      lastUsed: ++this.useCounter,
      lastWriteMs: 0,
    };
    this.loaded.set(conversation.id, loaded);
    try {
      await this.persist(loaded);
    } catch (error) {
      this.loaded.delete(conversation.id);
      throw error;
    }
    this.evict(conversation.id);
    this.changed.fire({ ids: [conversation.id] });
    return structuredClone(conversation);
  }

  /** Applies a change and saves it; when the save fails, `undo` (if given) takes the change back in memory too. */
  private async mutate<T>(
    id: string,
    touch: boolean,
    change: (conversation: Conversation) => T,
    undo?: (conversation: Conversation) => void,
  ): Promise<T> {
    const loaded = await this.acquire(id);
    const updatedAt = loaded.conversation.updatedAt;
    const result = change(loaded.conversation);
    if (touch) this.touch(loaded);
    loaded.dirty = true;
    try {
      await this.persist(loaded);
    } catch (error) {
      if (undo) {
        undo(loaded.conversation);
        loaded.conversation.updatedAt = updatedAt;
      }
      throw error;
    }
    this.changed.fire({ ids: [id] });
    return result;
  }

  private touch(loaded: LoadedConversation): void {
    loaded.conversation.updatedAt = this.isoNow();
    loaded.dirty = true;
  }

  private findMessage(conversation: Conversation, messageId: string): ChatMessage {
    for (let i = conversation.messages.length - 1; i >= 0; i--) {
      const message = conversation.messages[i];
      if (message?.id === messageId) return message;
    }
    throw new IpcFailure('NOT_FOUND', 'That message is no longer in the conversation.');
  }

  private scheduleFlush(loaded: LoadedConversation): void {
    if (loaded.timer || this.closed) return;
    // A conversation whose write takes long (thousands of messages) is written less often, so that
    // saving streamed text never takes more than about a fifth of the time, up to 2 s between writes.
    const delay = Math.max(this.flushIntervalMs, Math.min(MAX_FLUSH_INTERVAL_MS, loaded.lastWriteMs * 4));
    loaded.timer = setTimeout(() => {
      loaded.timer = undefined;
      this.persist(loaded).catch((error: unknown) =>
        this.log(`Could not save conversation ${loaded.conversation.id}`, error),
      );
    }, delay);
    loaded.timer.unref();
  }

  private clearFlush(loaded: LoadedConversation): void {
    if (loaded.timer) clearTimeout(loaded.timer);
    loaded.timer = undefined;
  }

  /** Queues a write of the conversation's state at the time the write starts; writes never overlap. */
  private persist(loaded: LoadedConversation): Promise<void> {
    this.clearFlush(loaded);
    loaded.pendingWrites++;
    const write = loaded.queue.then(() => this.writeNow(loaded));
    loaded.queue = write
      .catch(() => {})
      .finally(() => {
        loaded.pendingWrites--;
      });
    return write;
  }

  private async writeNow(loaded: LoadedConversation): Promise<void> {
    if (loaded.removed || !loaded.dirty) return;
    const { conversation } = loaded;
    const started = performance.now();
    loaded.dirty = false;
    const plain = Buffer.from(JSON.stringify({ v: 1, conversation }), 'utf8');
    const sealed = this.requireKey().seal(plain, conversationPurpose(conversation.id));
    const summary = summarize(conversation);
    this.writtenThisSession.add(conversation.id);
    let stamp: FileStamp;
    try {
      stamp = await this.writeFile(this.pathOf(conversation.id), sealed);
    } catch (error) {
      loaded.dirty = true;
      this.noteWrite(error);
      throw error;
    }
    this.noteWrite(undefined);
    loaded.lastWriteMs = performance.now() - started;
    if (loaded.removed) return;
    this.index.set(conversation.id, { ...summary, size: stamp.size, mtimeMs: stamp.mtimeMs });
    this.scheduleIndexWrite();
  }

  /** Records the outcome of a write, and tells listeners when saving starts or stops working. */
  private noteWrite(error: unknown): void {
    const problem = error === undefined ? undefined : describeWriteFailure(error);
    if (problem === this.saveProblem) return;
    this.saveProblem = problem;
    if (!this.closed) this.changed.fire({ ids: [] });
  }

  private scheduleIndexWrite(): void {
    this.indexDirty = true;
    if (this.indexTimer || this.closed) return;
    this.indexTimer = setTimeout(() => {
      this.indexTimer = undefined;
      this.writeIndexNow().catch((error: unknown) => this.log('Could not save the conversations index', error));
    }, this.indexWriteDelayMs);
    this.indexTimer.unref();
  }

  private writeIndexNow(): Promise<void> {
    if (this.indexTimer) clearTimeout(this.indexTimer);
    this.indexTimer = undefined;
    const write = this.indexQueue.then(async () => {
      if (!this.indexDirty) return;
      this.indexDirty = false;
      const plain = Buffer.from(JSON.stringify({ v: 1, entries: [...this.index.values()] }), 'utf8');
      try {
        await this.writeFile(join(this.dir, INDEX_FILE), this.requireKey().seal(plain, INDEX_PURPOSE));
      } catch (error) {
        this.indexDirty = true;
        this.noteWrite(error);
        throw error;
      }
      this.noteWrite(undefined);
    });
    this.indexQueue = write.catch(() => {});
    return write;
  }

  private async purgeTrash(): Promise<number> {
    const cutoff = this.options.clock.now() - this.trashRetentionMs;
    const expired = (await readdir(this.trashDir)).filter((name) => {
      const match = TRASH_NAME.exec(name);
      return match !== null && Number(match[2]) < cutoff;
    });
    await Promise.all(expired.map((name) => rm(join(this.trashDir, name), { force: true })));
    return expired.length;
  }

  private checkTitle(title: string): string {
    const trimmed = title.replace(/\s+/g, ' ').trim();
    if (trimmed.length === 0 || trimmed.length > 200) {
      throw new IpcFailure('BAD_REQUEST', 'A conversation title needs 1 to 200 characters.');
    }
    return trimmed;
  }

  private checkModel(model: string): string {
    if (model.length === 0 || model.length > 200) throw new IpcFailure('BAD_REQUEST', 'That model id is not valid.');
    return model;
  }

  private requireKey(): DataKey {
    if (!this.key) throw new Error('The conversation store is not open');
    return this.key;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('The conversation store is closed');
  }

  private fileOf(id: string): string {
    return `${id}${FILE_EXTENSION}`;
  }

  private pathOf(id: string): string {
    return join(this.dir, this.fileOf(id));
  }

  private isoNow(): string {
    return new Date(this.options.clock.now()).toISOString();
  }
}
