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
});
