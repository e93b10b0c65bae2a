import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { JWK } from 'jose';
import { AuditChainWalk, SqliteAuditLog, type AuditLog } from '../store/audit-log';
import { GatewayDatabase } from '../store/database';
import {
  CHECKPOINT_FILE,
  CHECKPOINT_KEY_FILE,
  checkpointPublicKeyOf,
  readCheckpoints,
  type CheckpointFile,
  type ReadCheckpoint,
} from './checkpoints';

/** The outcome of checking an audit chain against its signed checkpoints. */
export interface AuditVerdict {
  /** True when the chain is intact and agrees with every checkpoint. */
  readonly ok: boolean;
  /** Records walked (up to the first break). */
  readonly records: number;
  readonly head: string | null;
  readonly checkpoints: number;
  readonly newestCheckpoint: ReadCheckpoint | null;
  /** Records written after the newest checkpoint, which no signature covers yet. */
  readonly uncovered: number;
  /** Thumbprint of the key the checkpoints were checked with. */
  readonly keyThumbprint: string | null;
  /** Each thing found wrong, in plain words; empty when `ok`. */
  readonly problems: readonly string[];
}

/** The audit could not be checked at all (no database, no key): neither intact nor tampered. */
export class AuditUnverifiable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuditUnverifiable';
  }
}

const PAGE = 5000;

/**
 * Walks the whole chain and checks it against the checkpoints.
 *
 * Detects an edited record (its hash), a deleted or inserted middle record (sequence and link),
 * and deleted newest records (a checkpoint covers more records than remain, or names another head),
 * even when the chain was cut back and a new checkpoint signed over the shorter one: the earlier
 * checkpoint still covers more. (Counts may legitimately go down from one checkpoint to the next
 * when several instances sharing a chain each sign the newest record they wrote.)
 */
export async function verifyAudit(
  log: Pick<AuditLog, 'list'>,
  file: CheckpointFile,
  keyThumbprint: string | null,
): Promise<AuditVerdict> {
  const problems = [...file.problems];
  const checkpoints = [...file.checkpoints].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.count - b.count));
  const wanted = new Map<number, ReadCheckpoint[]>();
  for (const checkpoint of checkpoints)
    wanted.set(checkpoint.count, [...(wanted.get(checkpoint.count) ?? []), checkpoint]);

  const walk = new AuditChainWalk();
  let broken = false;
  let afterSeq = 0;
  walking: for (;;) {
    let page: Awaited<ReturnType<typeof log.list>>;
    try {
      page = await log.list({ afterSeq, limit: PAGE });
    } catch (error) {
      problems.push(`the records after ${afterSeq} cannot be read: ${(error as Error).message}`);
      broken = true;
      break;
    }
    if (page.length === 0) break;
    for (const record of page) {
      const failure = walk.next(record.seq, record.prevHash, record.hash, () => record);
      if (failure && !failure.ok) {
        problems.push(`record ${failure.brokenAt}: ${failure.problem}`);
        broken = true;
        break walking;
      }
      for (const checkpoint of wanted.get(record.seq) ?? []) {
        if (checkpoint.head !== record.hash) {
          problems.push(
            `record ${record.seq} is not the one the checkpoint of ${checkpoint.at} signed: records up to it were replaced`,
          );
        }
      }
      afterSeq = record.seq;
    }
  }
  const result = walk.result();
  const records = result.ok ? result.count : 0;
  if (!broken) {
    for (const checkpoint of checkpoints) {
      if (checkpoint.count > records) {
        problems.push(
          `the chain ends at record ${records} but the checkpoint of ${checkpoint.at} covers ${checkpoint.count}: the newest ${checkpoint.count - records} record(s) were deleted`,
        );
        break;
      }
    }
    if (checkpoints.length === 0 && records > 0) {
      problems.push(
        `no signed checkpoint covers the ${records} records, so deleted newest records could not be detected (the gateway writes one at intervals and on shutdown; was ${CHECKPOINT_FILE} removed?)`,
      );
    }
  }
  const newest = checkpoints.reduce<ReadCheckpoint | null>((a, b) => (a && a.count >= b.count ? a : b), null);
  return {
    ok: problems.length === 0,
    records,
    head: result.ok && records > 0 ? result.head : null,
    checkpoints: checkpoints.length,
    newestCheckpoint: newest,
    uncovered: newest ? Math.max(0, records - newest.count) : records,
    keyThumbprint,
    problems,
  };
}

/** Where to read an audit from. */
export interface StateDirVerification {
  /** The gateway's state folder (`gateway.db`, `keys/`, `audit-checkpoints.jsonl`). */
  readonly stateDir: string;
  /** A public JWK file to check checkpoints with instead of the state folder's key (a copy kept elsewhere). */
  readonly publicKeyFile?: string;
  /** More checkpoint files (copies kept elsewhere, or lines taken from the gateway log). */
  readonly checkpointFiles?: readonly string[];
  /** Check this audit log instead of `<stateDir>/gateway.db` (a shared PostgreSQL chain). */
  readonly log?: Pick<AuditLog, 'list'>;
}

/** Checks the audit of a gateway state folder; throws {@link AuditUnverifiable} when it cannot. */
export async function verifyStateDir(options: StateDirVerification): Promise<AuditVerdict> {
  const keyPath = options.publicKeyFile ?? join(options.stateDir, 'keys', CHECKPOINT_KEY_FILE);
  if (!existsSync(keyPath)) {
    throw new AuditUnverifiable(
      `No checkpoint key at ${keyPath}: is ${options.stateDir} a gateway state folder that has run this version?`,
    );
  }
  let publicKey: Awaited<ReturnType<typeof checkpointPublicKeyOf>>;
  try {
    publicKey = await checkpointPublicKeyOf(JSON.parse(readFileSync(keyPath, 'utf8')) as JWK);
  } catch (error) {
    throw new AuditUnverifiable(`The checkpoint key ${keyPath} is unreadable: ${(error as Error).message}`);
  }
  const files = [join(options.stateDir, CHECKPOINT_FILE), ...(options.checkpointFiles ?? [])];
  for (const extra of options.checkpointFiles ?? []) {
    if (!existsSync(extra)) throw new AuditUnverifiable(`No checkpoint file at ${extra}`);
  }
  const seen = new Set<string>();
  const merged: { checkpoints: ReadCheckpoint[]; problems: string[] } = { checkpoints: [], problems: [] };
  for (const path of files) {
    const read = await readCheckpoints(path, publicKey);
    merged.problems.push(...read.problems.map((problem) => `${path}: ${problem}`));
    for (const checkpoint of read.checkpoints) {
      const key = `${checkpoint.count}:${checkpoint.head}:${checkpoint.at}`;
      if (seen.has(key)) continue;
      seen.add(key);
      merged.checkpoints.push(checkpoint);
    }
  }
  if (options.log) return verifyAudit(options.log, merged, publicKey.kid);
  const dbPath = join(options.stateDir, 'gateway.db');
  if (!existsSync(dbPath)) throw new AuditUnverifiable(`No audit database at ${dbPath}`);
  let connection: DatabaseSync;
  try {
    connection = new DatabaseSync(dbPath, { readOnly: true });
  } catch (error) {
    throw new AuditUnverifiable(`Cannot open ${dbPath}: ${(error as Error).message}`);
  }
  const database = new GatewayDatabase(connection);
  try {
    return await verifyAudit(new SqliteAuditLog(database), merged, publicKey.kid);
  } finally {
    database.close();
  }
}

/** What the gateway finds at start: the newest valid checkpoint, and what is wrong with the chain's tail. */
export interface AuditTailCheck {
  readonly newest?: ReadCheckpoint;
  readonly problem?: string;
}

/**
 * Checks, cheaply, that the chain still holds the record the newest checkpoint signed.
 *
 * The gateway runs it at start, so a chain cut back while it was stopped shows in its log and
 * health rather than being silently extended (the full walk is `npm run audit:verify`).
 */
export async function checkAuditTail(
  log: Pick<AuditLog, 'list'>,
  checkpointPath: string,
  publicJwk: JWK,
): Promise<AuditTailCheck> {
  try {
    const file = await readCheckpoints(checkpointPath, await checkpointPublicKeyOf(publicJwk));
    const newest = file.checkpoints.reduce<ReadCheckpoint | undefined>(
      (a, b) => (a && a.count >= b.count ? a : b),
      undefined,
    );
    if (file.problems.length > 0) return { ...(newest ? { newest } : {}), problem: file.problems[0] };
    if (!newest) return {};
    const [record] = await log.list({ afterSeq: newest.count - 1, limit: 1 });
    if (!record || record.seq !== newest.count) {
      return {
        newest,
        problem: `the chain no longer holds record ${newest.count}, which the checkpoint of ${newest.at} covers: the newest records were deleted`,
      };
    }
    if (record.hash !== newest.head) {
      return { newest, problem: `record ${newest.count} is not the one the checkpoint of ${newest.at} signed` };
    }
    return { newest };
  } catch (error) {
    return { problem: `the audit chain could not be checked against its checkpoints: ${(error as Error).message}` };
  }
}

/** The verdict as `npm run audit:verify` prints it. */
export function formatVerdict(verdict: AuditVerdict): string {
  const lines = [
    `Audit chain: ${verdict.records} record(s)${verdict.head ? `, head ${verdict.head}` : ''}`,
    `Checkpoints: ${verdict.checkpoints} signed by key ${verdict.keyThumbprint ?? '(none)'}` +
      (verdict.newestCheckpoint
        ? `; the newest (${verdict.newestCheckpoint.at}, ${verdict.newestCheckpoint.trigger}) covers ${verdict.newestCheckpoint.count} record(s)`
        : ''),
  ];
  if (verdict.ok) {
    lines.push(
      verdict.uncovered > 0
        ? `${verdict.uncovered} record(s) were written after the newest checkpoint; the next checkpoint will cover them.`
        : 'Every record is covered by a signed checkpoint.',
      'VERDICT: INTACT. The chain is unbroken and agrees with every signed checkpoint.',
    );
  } else {
    lines.push(`VERDICT: TAMPERED. ${verdict.problems.length} problem(s):`);
    for (const problem of verdict.problems) lines.push(`  - ${problem}`);
  }
  return lines.join('\n');
}
