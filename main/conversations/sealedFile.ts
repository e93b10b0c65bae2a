import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { SecretStore } from '../platform';

const MAGIC = Buffer.from('CLC1', 'ascii');
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = MAGIC.length + IV_BYTES + TAG_BYTES;
const KEY_BYTES = 32;

/** Why a sealed file could not be opened, in words for the person reading the report. */
export class UnreadableDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnreadableDataError';
  }
}

/**
 * The 256-bit key conversations are encrypted with (AES-256-GCM).
 *
 * The key itself is stored only encrypted by the OS secret store, so copying the app's folder to
 * another account or machine yields nothing readable. Each sealed blob binds its purpose (for a
 * conversation, its id) as additional authenticated data: a file renamed to another id fails to open.
 */
export class DataKey {
  private constructor(private readonly key: Buffer) {}

  /** A fresh random key. */
  static generate(): DataKey {
    return new DataKey(randomBytes(KEY_BYTES));
  }

  /** Unwraps a key that {@link DataKey.wrap} produced; throws {@link UnreadableDataError} if it cannot. */
  static unwrap(wrapped: Uint8Array, secrets: SecretStore): DataKey {
    let raw: Buffer;
    try {
      raw = Buffer.from(secrets.decrypt(wrapped));
    } catch (error) {
      throw new UnreadableDataError(
        `the OS secret store could not decrypt the conversations key (${(error as Error).message})`,
      );
    }
    if (raw.length !== KEY_BYTES) throw new UnreadableDataError('the conversations key has the wrong length');
    return new DataKey(raw);
  }

  /** The key encrypted with the OS secret store, for writing to disk. */
  wrap(secrets: SecretStore): Uint8Array {
    return secrets.encrypt(this.key);
  }

  /** Encrypts and authenticates `plain`, bound to `purpose`. */
  seal(plain: Uint8Array, purpose: string): Buffer {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(purpose, 'utf8'));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([MAGIC, iv, cipher.getAuthTag(), body]);
  }

  /** Decrypts what {@link DataKey.seal} produced for the same `purpose`; throws {@link UnreadableDataError} otherwise. */
  open(sealed: Uint8Array, purpose: string): Buffer {
    const data = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    if (data.length < HEADER_BYTES || !data.subarray(0, MAGIC.length).equals(MAGIC)) {
      throw new UnreadableDataError('it is not in a format Clearance writes (truncated or overwritten)');
    }
    const ivEnd = MAGIC.length + IV_BYTES;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, data.subarray(MAGIC.length, ivEnd));
      decipher.setAAD(Buffer.from(purpose, 'utf8'));
      decipher.setAuthTag(data.subarray(ivEnd, HEADER_BYTES));
      return Buffer.concat([decipher.update(data.subarray(HEADER_BYTES)), decipher.final()]);
    } catch {
      throw new UnreadableDataError(
        'it failed its integrity check (the file is damaged, or was encrypted with another key or for another conversation)',
      );
    }
  }
}
