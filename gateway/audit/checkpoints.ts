import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { calculateJwkThumbprint, compactVerify, CompactSign, importJWK, type CryptoKey, type JWK } from 'jose';
import { loadOrCreateKey, type SigningKey } from '../auth/keys';
import type { AuditHead, AuditTrail } from './trail';

/** `typ` of a checkpoint JWS, so no other token the gateway signs can pass for one. */
export const CHECKPOINT_TYP = 'clearance-audit-checkpoint+jws';
/** The checkpoint file in the gateway's state folder: one compact JWS a line, appended. */
export const CHECKPOINT_FILE = 'audit-checkpoints.jsonl';
/** The checkpoint signing key, in `<stateDir>/keys/`. */
export const CHECKPOINT_KEY_FILE = 'audit-checkpoint.private.jwk.json';

/** What a checkpoint vouches for: the chain had `count` records, the last with hash `head`, at `at`. */
export interface AuditCheckpoint {
  readonly count: number;
  readonly head: string;
  /** ISO time of signing. */
  readonly at: string;
  /** Why it was written. */
  readonly trigger: 'interval' | 'shutdown';
}

/** A checkpoint line read back, with its position in the file. */
export interface ReadCheckpoint extends AuditCheckpoint {
  readonly line: number;
}

/** The checkpoint signing key of a state folder (created on first use). */
export function loadCheckpointKey(stateDir: string): Promise<SigningKey> {
  mkdirSync(join(stateDir, 'keys'), { recursive: true, mode: 0o700 });
  return loadOrCreateKey(join(stateDir, 'keys', CHECKPOINT_KEY_FILE));
}

/** Signs a checkpoint as a compact JWS (ES256, the checkpoint key's `kid`). */
export async function signCheckpoint(key: SigningKey, checkpoint: AuditCheckpoint): Promise<string> {
  const payload = new TextEncoder().encode(JSON.stringify(checkpoint));
  return new CompactSign(payload)
    .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: CHECKPOINT_TYP })
    .sign(key.privateKey);
}

/** Appends one line to `path` and forces it to disk before returning. */
function appendDurably(path: string, line: string): void {
  const created = !existsSync(path);
  const fd = openSync(path, 'a', 0o600);
  try {
    writeSync(fd, `${line}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  if (created) {
    // The new file's directory entry must be durable too.
    const dir = openSync(dirname(path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  }
}

/**
 * Writes signed checkpoints of the audit chain: every `intervalMs` when it grew, and on shutdown.
 *
 * Each is appended (fsynced) to `<stateDir>/audit-checkpoints.jsonl` and logged, so a copy of the
 * log kept elsewhere also holds every checkpoint.
 */
export class CheckpointWriter {
  private timer: NodeJS.Timeout | undefined;
  private newest: AuditCheckpoint | undefined;
  private failure: { readonly at: string; readonly reason: string } | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly path: string,
    private readonly key: SigningKey,
    private readonly trail: AuditTrail,
    private readonly log: (line: string) => void,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** The newest checkpoint written (or found at start), if any. */
  get last(): AuditCheckpoint | undefined {
    return this.newest;
  }

  /** The last failure to write a checkpoint, until one is written again. */
  get lastFailure(): { readonly at: string; readonly reason: string } | undefined {
    return this.failure;
  }

  /** Starts the interval (0 = only on shutdown); `newest` is the newest checkpoint already in the file. */
  start(intervalMs: number, newest: AuditCheckpoint | undefined): void {
    this.newest = newest;
    if (intervalMs > 0) {
      this.timer = setInterval(() => void this.write('interval'), intervalMs);
      this.timer.unref();
    }
  }

  /** Signs and appends a checkpoint of the current head, unless it is the one last written. */
  write(trigger: AuditCheckpoint['trigger']): Promise<void> {
    this.writing = this.writing.then(async () => {
      try {
        const head: AuditHead | undefined = await this.trail.head();
        if (!head || head.seq === this.newest?.count) return;
        const checkpoint: AuditCheckpoint = {
          count: head.seq,
          head: head.hash,
          at: this.clock().toISOString(),
          trigger,
        };
        const jws = await signCheckpoint(this.key, checkpoint);
        appendDurably(this.path, jws);
        this.newest = checkpoint;
        this.failure = undefined;
        this.log(`audit checkpoint (${trigger}): ${head.seq} records, head ${head.hash} ${jws}`);
      } catch (error) {
        this.failure = { at: this.clock().toISOString(), reason: (error as Error).message };
        this.log(`writing an audit checkpoint failed: ${(error as Error).message}`);
      }
    });
    return this.writing;
  }

  /** Stops the interval, waits for pending appends and writes the shutdown checkpoint. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.trail.settle();
    await this.write('shutdown');
  }
}

/** The public key that verifies a state folder's checkpoints, from its private key file. */
export async function checkpointPublicKeyOf(jwk: JWK): Promise<{ readonly key: CryptoKey; readonly kid: string }> {
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.x !== 'string' || typeof jwk.y !== 'string') {
    throw new Error('the checkpoint key is not a P-256 key');
  }
  const publicPart: JWK = { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y };
  const kid = await calculateJwkThumbprint(publicPart, 'sha256');
  return { key: (await importJWK(publicPart, 'ES256')) as CryptoKey, kid };
}

/** Checkpoints read from a file: those whose signature verifies, and a problem for each line that does not. */
export interface CheckpointFile {
  readonly checkpoints: readonly ReadCheckpoint[];
  readonly problems: readonly string[];
}

/**
 * Reads and verifies every line of a checkpoint file (a missing file has none).
 *
 * A line that is not a checkpoint JWS, is signed by another key, or has a malformed payload is
 * a problem: checkpoints are only ever appended by the gateway.
 */
export async function readCheckpoints(
  path: string,
  publicKey: { readonly key: CryptoKey; readonly kid: string },
): Promise<CheckpointFile> {
  if (!existsSync(path)) return { checkpoints: [], problems: [] };
  const checkpoints: ReadCheckpoint[] = [];
  const problems: string[] = [];
  const lines = readFileSync(path, 'utf8').split('\n');
  for (const [index, text] of lines.entries()) {
    const line = index + 1;
    const jws = text.trim();
    if (jws === '') continue;
    try {
      const { payload, protectedHeader } = await compactVerify(jws, publicKey.key, { algorithms: ['ES256'] });
      if (protectedHeader.typ !== CHECKPOINT_TYP) throw new Error(`typ is ${String(protectedHeader.typ)}`);
      if (protectedHeader.kid !== publicKey.kid) throw new Error('signed with another key');
      const body = JSON.parse(new TextDecoder().decode(payload)) as Partial<AuditCheckpoint>;
      if (
        !Number.isSafeInteger(body.count) ||
        (body.count ?? 0) < 1 ||
        typeof body.head !== 'string' ||
        !/^[0-9a-f]{64}$/.test(body.head) ||
        typeof body.at !== 'string' ||
        Number.isNaN(Date.parse(body.at)) ||
        (body.trigger !== 'interval' && body.trigger !== 'shutdown')
      ) {
        throw new Error('payload is not a checkpoint');
      }
      checkpoints.push({ count: body.count!, head: body.head, at: body.at, trigger: body.trigger, line });
    } catch (error) {
      problems.push(`checkpoint line ${line} does not verify (${(error as Error).message})`);
    }
  }
  return { checkpoints, problems };
}
