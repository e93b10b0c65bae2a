import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresStores, type PostgresStores } from '../gateway/store/postgres';
import { startGatewayHarness, type GatewayHarness } from '../gateway/testing/gateway-harness';
import { testPersonas } from '../gateway/testing/identity-provider';
import { startTestPostgres, type TestService } from '../gateway/testing/services';

// `npm run audit:verify -- <state-dir> --postgres <url>`: the chain several instances share in a
// real PostgreSQL (started on a free loopback port), checked against the instance's checkpoints.

const run = promisify(execFile);
const root = join(import.meta.dirname, '..');

let postgres: TestService;
let stores: PostgresStores;
let harness: GatewayHarness;
let stateDir: string;
let count: number;

beforeAll(async () => {
  postgres = await startTestPostgres();
  stores = await openPostgresStores({ connectionString: postgres.url, max: 4 });
  harness = await startGatewayHarness({
    auditCheckpointSeconds: 0,
    stores: {
      devices: stores.devices,
      audit: stores.audit,
      versions: stores.versions,
      suspensions: stores.suspensions,
    },
  });
  const client = await harness.signIn(testPersonas.fnResearcher);
  for (const model of ['haiku-4', 'mythos-5']) {
    await client.request('POST', '/v1/chat/completions', {
      body: { model, messages: [{ role: 'user', content: 'hello' }] },
    });
  }
  count = (await harness.gateway.audit.list({ limit: 10_000 })).length;
  await harness.gateway.close();
  await stores.close();
  stateDir = join(harness.stateDir, 'gateway');
}, 120_000);

afterAll(async () => {
  await harness?.close();
  await postgres?.stop();
});

async function verify(): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', join(root, 'scripts/audit-verify.ts'), stateDir, '--postgres', postgres.url],
      { cwd: root },
    );
    return { code: 0, stdout };
  } catch (error) {
    const failed = error as { code: number; stdout: string };
    return { code: failed.code, stdout: failed.stdout };
  }
}

describe('npm run audit:verify -- --postgres', () => {
  it('finds the shared chain intact, then detects its deleted newest records', async () => {
    expect(count).toBeGreaterThanOrEqual(4);
    const intact = await verify();
    expect(intact.stdout).toContain(`Audit chain: ${count} record(s)`);
    expect(intact.stdout).toContain('VERDICT: INTACT');
    expect(intact.code).toBe(0);

    const client = new pg.Client({ connectionString: postgres.url });
    await client.connect();
    try {
      await client.query('ALTER TABLE clearance_audit DISABLE TRIGGER clearance_audit_no_change');
      expect((await client.query('DELETE FROM clearance_audit WHERE seq > $1', [count - 1])).rowCount).toBe(1);
    } finally {
      await client.end();
    }
    const cut = await verify();
    expect(cut.stdout).toContain('VERDICT: TAMPERED');
    expect(cut.stdout).toContain(`the chain ends at record ${count - 1} but the checkpoint of`);
    expect(cut.code).toBe(1);
  });
});
