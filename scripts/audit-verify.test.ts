import { execFile } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECKPOINT_FILE, loadCheckpointKey, signCheckpoint } from '../gateway/audit/checkpoints';
import { hashAuditRecord, type AuditRecord } from '../gateway/store/audit-log';
import { startGatewayHarness, type GatewayHarness } from '../gateway/testing/gateway-harness';
import { testPersonas } from '../gateway/testing/identity-provider';

// `npm run audit:verify -- <state-dir>` against the state folder of a real gateway that ran and
// stopped (so its shutdown checkpoint covers every record), then against tampered copies of it.

const run = promisify(execFile);
const root = join(import.meta.dirname, '..');

let harness: GatewayHarness;
let work: string;
let pristine: string;
let count: number;

beforeAll(async () => {
  harness = await startGatewayHarness({ auditCheckpointSeconds: 0 });
  const allowed = await harness.signIn(testPersonas.usResearcher);
  const denied = await harness.signIn(testPersonas.fnResearcher);
  for (const [client, model] of [
    [allowed, 'haiku-4'],
    [denied, 'mythos-5'],
    [allowed, 'mythos-5'],
  ] as const) {
    await client.request('POST', '/v1/chat/completions', {
      body: { model, messages: [{ role: 'user', content: 'hello' }] },
    });
  }
  await fetch(`${harness.gateway.url}/v1/models`);
  count = (await harness.gateway.audit.list({ limit: 10_000 })).length;
  await harness.gateway.close();
  work = mkdtempSync(join(tmpdir(), 'clearance-audit-verify-'));
  pristine = join(harness.stateDir, 'gateway');
});

afterAll(async () => {
  await harness?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

let copies = 0;
/** A copy of the stopped gateway's state folder to tamper with. */
function copyOfState(): string {
  const dir = join(work, `state-${++copies}`);
  cpSync(pristine, dir, { recursive: true });
  return dir;
}

/** Runs SQL on a state folder's database with the append-only triggers dropped, as an intruder would. */
function tamper(stateDir: string, sql: (db: DatabaseSync) => void): void {
  const db = new DatabaseSync(join(stateDir, 'gateway.db'));
  try {
    db.exec('DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;');
    sql(db);
  } finally {
    db.close();
  }
}

async function verify(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ['--import', 'tsx', join(root, 'scripts/audit-verify.ts'), ...args],
      { cwd: root },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('npm run audit:verify', () => {
  it('finds the untouched audit intact, every record covered by the shutdown checkpoint', async () => {
    expect(count).toBeGreaterThanOrEqual(8);
    const result = await verify(copyOfState());
    expect(result.stdout).toContain(`Audit chain: ${count} record(s)`);
    expect(result.stdout).toMatch(/the newest \([^)]*, shutdown\) covers \d+ record/);
    expect(result.stdout).toContain('Every record is covered by a signed checkpoint.');
    expect(result.stdout).toContain('VERDICT: INTACT');
    expect(result.code).toBe(0);
  });

  it('detects an edited record', async () => {
    const state = copyOfState();
    tamper(state, (db) =>
      db.prepare(`UPDATE audit SET data = json_set(data, '$.effect', 'allow') WHERE kind = 'access' AND seq > 3`).run(),
    );
    const result = await verify(state);
    expect(result.stdout).toContain('VERDICT: TAMPERED');
    expect(result.stdout).toMatch(/record \d+: hash does not match the record contents/);
    expect(result.code).toBe(1);
  });

  it('detects an edited record whose hash was recomputed, because the next one no longer links to it', async () => {
    const state = copyOfState();
    tamper(state, (db) => {
      const row = db.prepare('SELECT * FROM audit WHERE seq = 3').get() as Record<string, string | number>;
      const forged: Omit<AuditRecord, 'hash'> = {
        seq: 3,
        decisionId: String(row.decision_id),
        at: String(row.at),
        kind: row.kind as AuditRecord['kind'],
        subject: row.subject === null ? null : String(row.subject),
        data: { ...(JSON.parse(String(row.data)) as object), effect: 'allow', model: 'mythos-5', forged: true },
        prevHash: String(row.prev_hash),
      };
      db.prepare('UPDATE audit SET data = ?, hash = ? WHERE seq = 3').run(
        JSON.stringify(forged.data),
        hashAuditRecord(forged),
      );
    });
    const result = await verify(state);
    expect(result.stdout).toMatch(/record 4: prevHash does not match the previous record/);
    expect(result.code).toBe(1);
  });

  it('detects a deleted middle record', async () => {
    const state = copyOfState();
    const middle = Math.floor(count / 2);
    tamper(state, (db) => db.prepare('DELETE FROM audit WHERE seq = ?').run(middle));
    const result = await verify(state);
    expect(result.stdout).toContain('VERDICT: TAMPERED');
    expect(result.stdout).toContain(`record ${middle + 1}: expected record ${middle}, found ${middle + 1}`);
    expect(result.code).toBe(1);
  });

  it('detects a record whose data was given a duplicate key, which SQLite reads and JSON.parse ignores', async () => {
    // Found by the attack pass: `{"effect":"allow","reason":null, …original…}` parses (last key
    // wins) to the original object, so its hash still matched, while SQLite's json_extract, what an
    // auditor's query reads, answers the first key: a denied call read as allowed, verdict INTACT.
    const state = copyOfState();
    let seq = 0;
    tamper(state, (db) => {
      seq = (
        db
          .prepare(
            `SELECT min(seq) AS seq FROM audit WHERE kind = 'access' AND json_extract(data, '$.effect') = 'deny'`,
          )
          .get() as { seq: number }
      ).seq;
      db.prepare(`UPDATE audit SET data = '{"effect":"allow","reason":null,' || substr(data, 2) WHERE seq = ?`).run(
        seq,
      );
    });
    const db = new DatabaseSync(join(state, 'gateway.db'), { readOnly: true });
    const read = db.prepare(`SELECT json_extract(data, '$.effect') AS effect FROM audit WHERE seq = ?`).get(seq) as {
      effect: string;
    };
    db.close();
    expect(read.effect).toBe('allow');
    const result = await verify(state);
    expect(result.stdout).toContain('VERDICT: TAMPERED');
    expect(result.stdout).toMatch(/record \d+: data is not exactly as the gateway wrote it/);
    expect(result.code).toBe(1);
  });

  it('detects deleted newest records, which leave an unbroken chain', async () => {
    const state = copyOfState();
    tamper(state, (db) => db.prepare('DELETE FROM audit WHERE seq > ?').run(count - 2));
    const db = new DatabaseSync(join(state, 'gateway.db'), { readOnly: true });
    expect((db.prepare('SELECT count(*) AS n FROM audit').get() as { n: number }).n).toBe(count - 2);
    db.close();
    const result = await verify(state);
    expect(result.stdout).toContain('VERDICT: TAMPERED');
    expect(result.stdout).toContain(`the chain ends at record ${count - 2} but the checkpoint of`);
    expect(result.stdout).toContain('the newest 2 record(s) were deleted');
    expect(result.code).toBe(1);
  });

  it('detects newest records deleted and the chain re-signed by a checkpoint over the shorter chain', async () => {
    const state = copyOfState();
    let head = '';
    tamper(state, (db) => {
      db.prepare('DELETE FROM audit WHERE seq > ?').run(count - 1);
      head = (db.prepare('SELECT hash FROM audit WHERE seq = ?').get(count - 1) as { hash: string }).hash;
    });
    const jws = await signCheckpoint(await loadCheckpointKey(state), {
      count: count - 1,
      head,
      at: new Date(Date.now() + 60_000).toISOString(),
      trigger: 'interval',
    });
    appendFileSync(join(state, CHECKPOINT_FILE), `${jws}\n`);
    const result = await verify(state);
    expect(result.stdout).toContain(`the chain ends at record ${count - 1} but the checkpoint of`);
    expect(result.stdout).toMatch(/Checkpoints: 2 signed/);
    expect(result.code).toBe(1);
  });

  // OPEN WEAKNESS (attack pass, 2026-11-28): a rollback of the state folder needs no key. Deleting
  // every record and the checkpoint file (or, with several checkpoints, the newest records together
  // with the newest lines of audit-checkpoints.jsonl) leaves a folder that looks like an earlier,
  // honest one, and the verdict is INTACT. Only checkpoint copies kept off the host
  // (`--checkpoints`, from the shipped gateway log) or an external anchor can catch it; the fix is
  // not small (the verifier would need a record of the newest checkpoint outside the folder).
  it.fails('detects a rollback: every record and the checkpoint file deleted (needs no key)', async () => {
    const state = copyOfState();
    tamper(state, (db) => db.prepare('DELETE FROM audit').run());
    rmSync(join(state, CHECKPOINT_FILE));
    const result = await verify(state);
    expect(result.stdout).toContain('VERDICT: TAMPERED');
    expect(result.code).toBe(1);
  });

  it('detects a deleted checkpoint file, and a checkpoint line that was altered', async () => {
    const withoutFile = copyOfState();
    rmSync(join(withoutFile, CHECKPOINT_FILE));
    const missing = await verify(withoutFile);
    expect(missing.stdout).toContain('no signed checkpoint covers the');
    expect(missing.code).toBe(1);

    const altered = copyOfState();
    const path = join(altered, CHECKPOINT_FILE);
    const [header, payload, signature] = readFileSync(path, 'utf8').trim().split('\n').at(-1)!.split('.');
    const body = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as { count: number };
    const forged = Buffer.from(JSON.stringify({ ...body, count: body.count - 1 })).toString('base64url');
    writeFileSync(path, `${header}.${forged}.${signature}\n`);
    const result = await verify(altered);
    expect(result.stdout).toMatch(/checkpoint line 1 does not verify/);
    expect(result.code).toBe(1);
  });

  it('says it could not check a folder that is not a gateway state folder', async () => {
    const empty = join(work, 'empty');
    cpSync(pristine, empty, { recursive: true, filter: (source) => !source.endsWith('gateway.db') });
    const result = await verify(empty);
    expect(result.stderr).toContain('VERDICT: NOT CHECKED. No audit database at');
    expect(result.code).toBe(2);
    expect((await verify()).code).toBe(2);
  });

  it('shows a gateway restarted on a cut-back chain as degraded, with the reason', async () => {
    const state = copyOfState();
    tamper(state, (db) => db.prepare('DELETE FROM audit WHERE seq > ?').run(count - 1));
    const lines: string[] = [];
    const restarted = await startGatewayHarness({ stateDir: state, log: (line) => lines.push(line) });
    try {
      const health = (await (await fetch(`${restarted.gateway.url}/healthz`)).json()) as {
        status: string;
        audit: { problem: string | null };
      };
      expect(health.status).toBe('degraded');
      expect(health.audit.problem).toContain(`no longer holds record ${count}`);
      expect(lines.some((line) => line.startsWith('AUDIT CHAIN DOES NOT MATCH ITS SIGNED CHECKPOINT'))).toBe(true);
    } finally {
      await restarted.close();
    }
  });
});
