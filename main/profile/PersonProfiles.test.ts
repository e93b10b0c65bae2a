import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConversationStore } from '../conversations/ConversationStore';
import { DataKey } from '../conversations/sealedFile';
import { ManualClock } from '../conversations/testing/fixture';
import { EntitlementCache } from '../entitlements/cache';
import { MemorySecretStore } from '../node/adapters';
import { ActivePerson } from './ActivePerson';
import { personIdOf, profileFolderName } from './personId';
import { LEGACY_SET_ASIDE_NOTICE, PersonProfiles } from './PersonProfiles';

const AVERY = 'oidc:https://localhost:4443#us-researcher';
const BAO = 'oidc:https://localhost:4443#foreign-national';

let root: string;
const clock = new ManualClock();
/** One OS secret store for the device: both people use the same OS account on a shared laptop. */
const secrets = new MemorySecretStore();
const stores: ConversationStore[] = [];

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'clearance-profiles-'));
});

afterEach(async () => {
  await Promise.all(stores.splice(0).map((store) => store.close().catch(() => {})));
  await rm(root, { recursive: true, force: true });
});

function storeOf(profiles: PersonProfiles, personId: string): ConversationStore {
  const store = new ConversationStore({
    dir: join(profiles.folderOf(personId), 'conversations'),
    account: personId,
    secrets,
    clock,
    log: () => {},
  });
  stores.push(store);
  return store;
}

describe('personIdOf', () => {
  it('names a person by tenant and object id, else by issuer and subject, never by display name', () => {
    const base = { homeAccountId: 'h', environment: 'login.example' };
    expect(personIdOf({ ...base, idTokenClaims: { tid: 't1', oid: 'o1', iss: 'i', sub: 's' } })).toBe('entra:t1:o1');
    expect(personIdOf({ ...base, idTokenClaims: { iss: 'https://idp.example', sub: 's1', name: 'Avery' } })).toBe(
      'oidc:https://idp.example#s1',
    );
    expect(personIdOf(base)).toBe('msal:login.example#h');
    expect(personIdOf({ ...base, idTokenClaims: { iss: 'https://idp.example', sub: 's2' } })).not.toBe(
      personIdOf({ ...base, idTokenClaims: { iss: 'https://idp.example', sub: 's1' } }),
    );
  });

  it('gives each person a folder whose name does not disclose who they are', () => {
    expect(profileFolderName(AVERY)).toMatch(/^[0-9a-f]{32}$/);
    expect(profileFolderName(AVERY)).not.toBe(profileFolderName(BAO));
    expect(profileFolderName(AVERY)).not.toContain('us-researcher');
  });
});

describe('per-person data keys', () => {
  it('refuses data sealed for one person when opened for another, even with the same key bytes', () => {
    const key = DataKey.generate(AVERY);
    const sealed = key.seal(Buffer.from('export-controlled answer'), 'clearance:conversation:v1:c1');
    expect(key.open(sealed, 'clearance:conversation:v1:c1').toString()).toBe('export-controlled answer');
    // Avery's wrapped key unwraps only for Avery.
    const wrapped = key.wrap(secrets);
    expect(() => DataKey.unwrap(wrapped, secrets, BAO)).toThrow(/belongs to another person/);
    expect(() => DataKey.unwrap(wrapped, secrets)).toThrow(/belongs to another person/);
    expect(DataKey.unwrap(wrapped, secrets, AVERY).open(sealed, 'clearance:conversation:v1:c1').toString()).toBe(
      'export-controlled answer',
    );
  });

  it('a conversation file moved from one person’s folder into another’s fails to open there', async () => {
    const profiles = new PersonProfiles({ userData: root, clock, log: () => {} });
    const avery = storeOf(profiles, AVERY);
    const created = await avery.create('mythos-5', 'Avery’s export-controlled chat');
    await avery.appendMessage(created.id, { role: 'assistant', content: 'controlled detail', status: 'complete' });
    await avery.close();
    const bao = storeOf(profiles, BAO);
    await bao.open();
    expect(await bao.list()).toEqual([]);

    const baoDir = join(profiles.folderOf(BAO), 'conversations');
    await copyFile(
      join(profiles.folderOf(AVERY), 'conversations', `${created.id}.conv`),
      join(baoDir, `${created.id}.conv`),
    );
    const reopened = storeOf(profiles, BAO);
    await expect(reopened.get(created.id)).rejects.toMatchObject({ error: { code: 'NOT_FOUND' } });
    expect(await reopened.list()).toEqual([]);
    expect(reopened.unreadableFiles().map((f) => f.reason)).toEqual([
      expect.stringMatching(/integrity check.*another person/),
    ]);
    // Avery still has hers.
    expect((await storeOf(profiles, AVERY).get(created.id)).messages[0]?.content).toBe('controlled detail');
  });

  it('a data key copied into another person’s folder is refused and their own files stay unreadable to it', async () => {
    const profiles = new PersonProfiles({ userData: root, clock, log: () => {} });
    const avery = storeOf(profiles, AVERY);
    const created = await avery.create('mythos-5', 'Avery only');
    await avery.close();
    const baoDir = join(profiles.folderOf(BAO), 'conversations');
    await mkdir(baoDir, { recursive: true });
    const averyDir = join(profiles.folderOf(AVERY), 'conversations');
    for (const name of await readdir(averyDir)) {
      if (name.endsWith('.bin') || name.endsWith('.conv')) await copyFile(join(averyDir, name), join(baoDir, name));
    }
    const bao = storeOf(profiles, BAO);
    expect(await bao.list()).toEqual([]);
    await expect(bao.get(created.id)).rejects.toMatchObject({ error: { code: 'NOT_FOUND' } });
    expect(bao.unreadableFiles().some((f) => /belongs to another person/.test(f.reason))).toBe(true);
  });

  it('an entitlement cache file copied into another person’s cache reads as absent', async () => {
    const profiles = new PersonProfiles({ userData: root, clock, log: () => {} });
    const cacheOf = (person: string) =>
      new EntitlementCache({ secrets, directory: join(profiles.folderOf(person), 'entitlements'), account: person });
    const avery = cacheOf(AVERY);
    await avery.saveDocument({ jws: 'header.averys-document.signature', fetchedAt: 1 });
    expect(await cacheOf(AVERY).loadDocument()).toEqual({ jws: 'header.averys-document.signature', fetchedAt: 1 });
    const bao = cacheOf(BAO);
    await bao.saveVersions({ bao: 1 });
    await copyFile(avery.files.document, bao.files.document);
    expect(await cacheOf(BAO).loadDocument()).toBeUndefined();
  });
});

describe('PersonProfiles', () => {
  it('sets aside data from before per-person profiles and says so once', async () => {
    await mkdir(join(root, 'conversations'), { recursive: true });
    await writeFile(join(root, 'conversations', 'index.bin'), 'old');
    await mkdir(join(root, 'entitlements'), { recursive: true });
    await writeFile(join(root, 'device-key.bin'), 'device');
    const profiles = new PersonProfiles({ userData: root, clock, log: () => {} });
    expect(await profiles.setAsideLegacyData()).toBe(true);
    const top = await readdir(root);
    expect(top).not.toContain('conversations');
    expect(top).not.toContain('entitlements');
    expect(top).toContain('device-key.bin');
    const [aside] = await readdir(join(root, 'set-aside'));
    expect((await readdir(join(root, 'set-aside', aside ?? ''))).sort()).toEqual(['conversations', 'entitlements']);
    expect(await profiles.takeNotices()).toEqual([LEGACY_SET_ASIDE_NOTICE]);
    expect(await profiles.takeNotices()).toEqual([]);
    expect(await profiles.setAsideLegacyData()).toBe(false);
  });
});

describe('ActivePerson', () => {
  it('switches at once and closes the previous person’s services after their work', async () => {
    const events: string[] = [];
    const active = new ActivePerson(
      async (id: string) => ({
        id,
        close: async () => {
          events.push(`closed ${id}`);
        },
      }),
      () => {},
    );
    active.switchTo('avery');
    expect((await active.current())?.id).toBe('avery');
    active.switchTo('bao');
    expect(active.isActive('avery')).toBe(false);
    expect((await active.current())?.id).toBe('bao');
    expect(events).toEqual(['closed avery']);
    active.switchTo(undefined);
    expect(await active.current()).toBeUndefined();
    await active.settled();
    expect(events).toEqual(['closed avery', 'closed bao']);
  });
});
