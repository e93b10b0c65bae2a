import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MemorySecretStore } from '../node/adapters';
import { DataKey, UnreadableDataError } from './sealedFile';

describe('DataKey', () => {
  it('round-trips data sealed for a purpose and hides the plaintext', () => {
    const key = DataKey.generate();
    const sealed = key.seal(Buffer.from('plain words'), 'conversation:a');
    expect(sealed.includes(Buffer.from('plain words'))).toBe(false);
    expect(key.open(sealed, 'conversation:a').toString()).toBe('plain words');
  });

  it('refuses data sealed for another purpose, tampered with, or under another key', () => {
    const key = DataKey.generate();
    const sealed = key.seal(Buffer.from('plain words'), 'conversation:a');
    expect(() => key.open(sealed, 'conversation:b')).toThrow(UnreadableDataError);
    const tampered = Buffer.from(sealed);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
    expect(() => key.open(tampered, 'conversation:a')).toThrow(/integrity check/);
    expect(() => DataKey.generate().open(sealed, 'conversation:a')).toThrow(/integrity check/);
    expect(() => key.open(sealed.subarray(0, 10), 'conversation:a')).toThrow(/not in a format/);
  });

  it('wraps the key with the OS secret store and unwraps it only with the same store', () => {
    const secrets = new MemorySecretStore();
    const key = DataKey.generate();
    const unwrapped = DataKey.unwrap(key.wrap(secrets), secrets);
    expect(unwrapped.open(key.seal(Buffer.from('x'), 'p'), 'p').toString()).toBe('x');
    expect(() => DataKey.unwrap(key.wrap(secrets), new MemorySecretStore())).toThrow(/could not decrypt/);
  });

  it('writes CLC1, a fresh 96-bit IV and a 128-bit tag before the ciphertext', () => {
    const key = DataKey.generate();
    const first = key.seal(Buffer.from('abc'), 'p');
    const second = key.seal(Buffer.from('abc'), 'p');
    expect(first.subarray(0, 4).toString('ascii')).toBe('CLC1');
    expect(first).toHaveLength(4 + 12 + 16 + 3);
    expect(first.subarray(4, 16).equals(second.subarray(4, 16))).toBe(false);
  });

  it('opens an empty plaintext and a sealed blob that is a view into a larger buffer', () => {
    const key = DataKey.generate();
    expect(key.open(key.seal(new Uint8Array(0), 'p'), 'p')).toHaveLength(0);
    const sealed = key.seal(Buffer.from('inside'), 'p');
    const larger = Buffer.concat([Buffer.from('prefix--'), sealed, Buffer.from('--suffix')]);
    const view = new Uint8Array(larger.buffer, larger.byteOffset + 8, sealed.length);
    expect(key.open(view, 'p').toString()).toBe('inside');
  });

  it('refuses a blob one byte shorter than the header, or with another magic, as not ours', () => {
    const key = DataKey.generate();
    const sealed = key.seal(new Uint8Array(0), 'p');
    const message = 'it is not in a format Clearance writes (truncated or overwritten)';
    expect(() => key.open(sealed.subarray(0, 31), 'p')).toThrow(new UnreadableDataError(message));
    const otherMagic = Buffer.from(sealed);
    otherMagic[3] = 0x32;
    expect(() => key.open(otherMagic, 'p')).toThrow(new UnreadableDataError(message));
  });

  it('refuses a changed IV or tag with the integrity message', () => {
    const key = DataKey.generate();
    const sealed = key.seal(Buffer.from('plain words'), 'p');
    const message =
      'it failed its integrity check (the file is damaged, or was encrypted with another key, for another person or for another conversation)';
    for (const index of [4, 15, 16, 31]) {
      const changed = Buffer.from(sealed);
      changed[index] = changed[index]! ^ 1;
      expect(() => key.open(changed, 'p')).toThrow(new UnreadableDataError(message));
    }
  });

  it('refuses a wrapped key that unwraps to the wrong length', () => {
    const secrets = new MemorySecretStore();
    const short = secrets.encrypt(new Uint8Array(16));
    expect(() => DataKey.unwrap(short, secrets)).toThrow(new UnreadableDataError('the data key has the wrong length'));
    const refusing = new MemorySecretStore();
    refusing.decrypt = () => {
      throw new Error('keychain locked');
    };
    expect(() => DataKey.unwrap(new Uint8Array(40), refusing)).toThrow(
      new UnreadableDataError('the OS secret store could not decrypt the data key (keychain locked)'),
    );
  });

  it('binds a person’s key to their account: it unwraps only for that account', () => {
    const secrets = new MemorySecretStore();
    const alice = DataKey.generate('tenant/alice');
    const wrapped = alice.wrap(secrets);
    // The account is inside the encrypted envelope, not only beside it.
    expect(Buffer.from(secrets.decrypt(wrapped)).subarray(0, 4).toString('ascii')).toBe('CLP1');
    const again = DataKey.unwrap(wrapped, secrets, 'tenant/alice');
    expect(again.account).toBe('tenant/alice');
    expect(again.open(alice.seal(Buffer.from('mine'), 'p'), 'p').toString()).toBe('mine');
    // The purpose stays bound too: a person's file renamed to another conversation does not open.
    expect(() => again.open(alice.seal(Buffer.from('mine'), 'conversation:a'), 'conversation:b')).toThrow(
      /integrity check/,
    );
    for (const other of ['tenant/bob', '']) {
      expect(() => DataKey.unwrap(wrapped, secrets, other)).toThrow(
        new UnreadableDataError('the data key belongs to another person'),
      );
    }
  });

  it('refuses a shared (unbound) key for a person and a bound key with no terminator', () => {
    const secrets = new MemorySecretStore();
    const shared = DataKey.generate();
    expect(Buffer.from(secrets.decrypt(shared.wrap(secrets))).length).toBe(32);
    expect(() => DataKey.unwrap(shared.wrap(secrets), secrets, 'tenant/alice')).toThrow(
      new UnreadableDataError('the data key belongs to another person'),
    );
    const damaged = secrets.encrypt(Buffer.concat([Buffer.from('CLP1tenant/alice'), Buffer.alloc(32, 1)]));
    expect(() => DataKey.unwrap(damaged, secrets, 'tenant/alice')).toThrow(
      new UnreadableDataError('the data key is damaged'),
    );
  });

  it('binds the account into every sealed blob, so the same key bytes under another account cannot open it', () => {
    const secrets = new MemorySecretStore();
    const alice = DataKey.generate('tenant/alice');
    const sealed = alice.seal(Buffer.from('mine'), 'conversation:a');
    // Re-wrap the same 32 key bytes as the shared store's key: only the account differs.
    const raw = Buffer.from(secrets.decrypt(alice.wrap(secrets))).subarray(-32);
    const unbound = DataKey.unwrap(secrets.encrypt(raw), secrets);
    expect(() => unbound.open(sealed, 'conversation:a')).toThrow(/integrity check/);
    expect(unbound.open(unbound.seal(Buffer.from('shared'), 'conversation:a'), 'conversation:a').toString()).toBe(
      'shared',
    );
    // The shared store of earlier versions bound only the purpose: its files still open.
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', raw, iv);
    cipher.setAAD(Buffer.from('conversation:a', 'utf8'));
    const body = Buffer.concat([cipher.update('from 1.x'), cipher.final()]);
    const earlier = Buffer.concat([Buffer.from('CLC1'), iv, cipher.getAuthTag(), body]);
    expect(unbound.open(earlier, 'conversation:a').toString()).toBe('from 1.x');
  });

  it('names its error class so logs can tell it apart', () => {
    expect(new UnreadableDataError('x').name).toBe('UnreadableDataError');
  });
});
