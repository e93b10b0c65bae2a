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

/** Marks a wrapped key that names the person it belongs to (followed by the account id, a NUL, the key). */
const BOUND_MAGIC = Buffer.from('CLP1', 'ascii');

/**
 * The 256-bit key a person's data is encrypted with (AES-256-GCM).
 *
 * The key itself is stored only encrypted by the OS secret store, so copying the app's folder to
 * another account or machine yields nothing readable. Each sealed blob binds its purpose (for a
 * conversation, its id) as additional authenticated data: a file renamed to another id fails to open.
 * A key made for a person (`account`, their tenant and object id or issuer and subject) also binds
 * that account into every blob and into the wrapped key, so a file or key moved into another
 * person's folder fails to open there.
 */
export class DataKey {
  private constructor(
    private readonly key: Buffer,
    /** The account this key belongs to; empty for the single shared store of earlier versions. */
    readonly account: string,
  ) {}

  /** A fresh random key, for `account` when given. */
  static generate(account = ''): DataKey {
    return new DataKey(randomBytes(KEY_BYTES), account);
  }

  /**
   * Unwraps a key that {@link DataKey.wrap} produced for the same `account`; throws {@link UnreadableDataError} if it cannot.
   */
  static unwrap(wrapped: Uint8Array, secrets: SecretStore, account = ''): DataKey {
    let raw: Buffer;
    try {
      raw = Buffer.from(secrets.decrypt(wrapped));
    } catch (error) {
      throw new UnreadableDataError(`the OS secret store could not decrypt the data key (${(error as Error).message})`);
    }
    let owner = '';
    if (raw.subarray(0, BOUND_MAGIC.length).equals(BOUND_MAGIC)) {
      const end = raw.indexOf(0, BOUND_MAGIC.length);
      if (end === -1) throw new UnreadableDataError('the data key is damaged');
      owner = raw.subarray(BOUND_MAGIC.length, end).toString('utf8');
      raw = raw.subarray(end + 1);
    }
    if (owner !== account) throw new UnreadableDataError('the data key belongs to another person');
    if (raw.length !== KEY_BYTES) throw new UnreadableDataError('the data key has the wrong length');
    return new DataKey(raw, account);
  }

  /** The key (and the account it belongs to) encrypted with the OS secret store, for writing to disk. */
  wrap(secrets: SecretStore): Uint8Array {
    if (this.account === '') return secrets.encrypt(this.key);
    return secrets.encrypt(Buffer.concat([BOUND_MAGIC, Buffer.from(this.account, 'utf8'), Buffer.from([0]), this.key]));
  }

  private aad(purpose: string): Buffer {
    return Buffer.from(this.account === '' ? purpose : `${this.account}\u0000${purpose}`, 'utf8');
  }

  /** Encrypts and authenticates `plain`, bound to `purpose`. */
  seal(plain: Uint8Array, purpose: string): Buffer {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(this.aad(purpose));
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
      decipher.setAAD(this.aad(purpose));
      decipher.setAuthTag(data.subarray(ivEnd, HEADER_BYTES));
      return Buffer.concat([decipher.update(data.subarray(HEADER_BYTES)), decipher.final()]);
    } catch {
      throw new UnreadableDataError(
        'it failed its integrity check (the file is damaged, or was encrypted with another key, for another person or for another conversation)',
      );
    }
  }
}
