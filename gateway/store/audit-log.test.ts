import { describe, expect, it } from 'vitest';
import { DatabaseSync as Database } from 'node:sqlite';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson, GENESIS_HASH, hashAuditRecord, newDecisionId, SqliteAuditLog } from './audit-log';
import { openGatewayDatabase } from './database';

function withLog(run: (log: SqliteAuditLog, path: string) => Promise<void>) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clearance-audit-'));
    const path = join(dir, 'gateway.db');
    const db = openGatewayDatabase(path);
    try {
      await run(new SqliteAuditLog(db), path);
    } finally {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

async function appendThree(log: SqliteAuditLog) {
  for (const model of ['haiku-4', 'mythos-5', 'atlas-3-research']) {
    await log.append({
      kind: 'access',
      subject: 'fn-researcher',
      data: { model, effect: 'deny', reason: 'NOT_ENTITLED' },
    });
  }
}

describe('canonicalJson', () => {
  it('writes the form every stored hash was computed over: sorted keys, no undefined members, no spaces', () => {
    const value = {
      z: 1,
      a: [3, undefined, { y: 'é', b: null, c: undefined }],
      B: { nested: { k2: true, k1: false } },
      '': 'empty',
      '\u00e9': 2,
      a1: 'x"y',
    };
    // Sorted by UTF-16 code units: "" < "B" < "a" < "a1" < "z" < "é".
    expect(canonicalJson(value)).toBe(
      '{"":"empty","B":{"nested":{"k1":false,"k2":true}},"a":[3,null,{"b":null,"y":"é"}],"a1":"x\\"y","z":1,"é":2}',
    );
    expect(canonicalJson([])).toBe('[]');
    expect(canonicalJson({})).toBe('{}');
    expect(canonicalJson({ only: undefined })).toBe('{}');
    expect(canonicalJson('text')).toBe('"text"');
    expect(canonicalJson(undefined)).toBe('null');
    // A record hashed before this implementation (seq 1 of a chain written by the old one).
    expect(
      hashAuditRecord({
        seq: 1,
        decisionId: 'dec_0123456789abcdef0123456789abcdef',
        at: '2026-12-01T00:00:00.000Z',
        kind: 'access',
        subject: 'fn-researcher',
        data: { model: 'haiku-4', effect: 'deny', reason: 'NOT_ENTITLED', requestId: 'req_1' },
        prevHash: GENESIS_HASH,
      }),
    ).toBe('6000a10da68797303f2b8029f697d80797b952b07bd1ee6370c6c7fb2898d8ba');
  });
});

describe('newDecisionId', () => {
  it('makes dec_ + 32 hex ids that sort in time order (appended at the end of the index) and never repeat', async () => {
    const earlier = Array.from({ length: 500 }, () => newDecisionId());
    await new Promise((resolve) => setTimeout(resolve, 3));
    const later = newDecisionId();
    for (const id of [...earlier, later]) expect(id).toMatch(/^dec_[0-9a-f]{32}$/);
    expect(new Set(earlier).size).toBe(earlier.length);
    for (const id of earlier) expect(id < later).toBe(true);
  });
});

describe('SqliteAuditLog', () => {
  it(
    'chains each record to the previous one and verifies the chain',
    withLog(async (log) => {
      await appendThree(log);
      const records = await log.list();
      expect(records.map((r) => r.seq)).toEqual([1, 2, 3]);
      expect(records[0]?.prevHash).toBe(GENESIS_HASH);
      expect(records[1]?.prevHash).toBe(records[0]?.hash);
      expect(records[2]?.decisionId).toMatch(/^dec_[0-9a-f]{32}$/);
      expect(await log.verifyChain()).toEqual({ ok: true, count: 3, head: records[2]?.hash });
    }),
  );

  it(
    'leaves no trace of an append that fails in a batch, and commits the others of that batch',
    withLog(async (log) => {
      const data = { model: 'haiku-4', effect: 'allow' };
      const first = log.append({ kind: 'access', decisionId: 'dec_same', subject: 'a', data });
      const duplicate = log.append({ kind: 'access', decisionId: 'dec_same', subject: 'b', data });
      const third = log.append({ kind: 'access', subject: 'c', data });
      await expect(duplicate).rejects.toThrow(/UNIQUE/);
      expect((await first).seq).toBe(1);
      expect((await third).seq).toBe(2);
      const records = await log.list();
      expect(records.map((r) => r.subject)).toEqual(['a', 'c']);
      expect(await log.verifyChain()).toEqual({ ok: true, count: 2, head: records[1]?.hash });
    }),
  );

  it(
    'refuses updates and deletes through SQL',
    withLog(async (log, path) => {
      await appendThree(log);
      const other = new Database(path);
      try {
        expect(() => other.prepare("UPDATE audit SET data = '{}' WHERE seq = 2").run()).toThrow(/append-only/);
        expect(() => other.prepare('DELETE FROM audit WHERE seq = 3').run()).toThrow(/append-only/);
      } finally {
        other.close();
      }
    }),
  );

  it(
    'detects a record edited behind the triggers',
    withLog(async (log, path) => {
      await appendThree(log);
      const other = new Database(path);
      try {
        other.exec('DROP TRIGGER audit_no_update');
        other.prepare(`UPDATE audit SET data = json_set(data, '$.effect', 'allow') WHERE seq = 2`).run();
      } finally {
        other.close();
      }
      expect(await log.verifyChain()).toMatchObject({
        ok: false,
        brokenAt: 2,
        problem: expect.stringContaining('hash'),
      });
    }),
  );

  it(
    'detects a deleted record',
    withLog(async (log, path) => {
      await appendThree(log);
      const other = new Database(path);
      try {
        other.exec('DROP TRIGGER audit_no_delete');
        other.prepare('DELETE FROM audit WHERE seq = 2').run();
      } finally {
        other.close();
      }
      expect(await log.verifyChain()).toMatchObject({
        ok: false,
        brokenAt: 3,
        problem: expect.stringContaining('missing'),
      });
    }),
  );

  it(
    'detects a record rewritten with a recomputed hash, because the next record no longer links to it',
    withLog(async (log, path) => {
      await appendThree(log);
      const forged = { ...(await log.list())[1]!, data: { model: 'mythos-5', effect: 'allow' } };
      const other = new Database(path);
      try {
        other.exec('DROP TRIGGER audit_no_update');
        other
          .prepare('UPDATE audit SET data = ?, hash = ? WHERE seq = 2')
          .run(JSON.stringify(forged.data), hashAuditRecord(forged));
      } finally {
        other.close();
      }
      expect(await log.verifyChain()).toMatchObject({
        ok: false,
        brokenAt: 3,
        problem: expect.stringContaining('prevHash'),
      });
    }),
  );
});
