import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayHarness, type GatewayHarness } from '../testing/gateway-harness';
import { testPersonas } from '../testing/identity-provider';
import { CHECKPOINT_FILE, CHECKPOINT_TYP, loadCheckpointKey } from './checkpoints';
import { verifyStateDir } from './verify';

// Checkpoints written while the gateway runs, at its interval, as `npm run audit:verify` reads them.

let harness: GatewayHarness;
let stateDir: string;

beforeAll(async () => {
  harness = await startGatewayHarness({ auditCheckpointSeconds: 1 });
  stateDir = join(harness.stateDir, 'gateway');
});

afterAll(async () => {
  await harness?.close();
});

async function eventually<T>(read: () => Promise<T | undefined>, what: string): Promise<T> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const value = await read();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('audit checkpoints of a running gateway', () => {
  it('are signed at the interval over every durable record, and shown in health', async () => {
    const client = await harness.signIn(testPersonas.usResearcher);
    expect((await client.request('GET', '/v1/entitlements')).status).toBe(200);
    const count = (await harness.gateway.audit.list({ limit: 10_000 })).length;
    const health = await eventually(async () => {
      const body = (await (await fetch(`${harness.gateway.url}/healthz`)).json()) as {
        status: string;
        audit: { lastCheckpoint: { count: number; at: string } | null; problem: string | null };
      };
      return (body.audit.lastCheckpoint?.count ?? 0) >= count ? body : undefined;
    }, 'an interval checkpoint covering every record');
    expect(health.audit.problem).toBeNull();
    expect(health.status).toBe('ok');

    const lines = readFileSync(join(stateDir, CHECKPOINT_FILE), 'utf8').trim().split('\n');
    const key = await loadCheckpointKey(stateDir);
    expect(decodeProtectedHeader(lines.at(-1)!)).toEqual({ alg: 'ES256', kid: key.kid, typ: CHECKPOINT_TYP });
    // A separate key: neither the session nor the entitlement key the JWKS publishes.
    const jwks = (await (await fetch(`${harness.gateway.url}/.well-known/jwks.json`)).json()) as {
      keys: { kid: string }[];
    };
    expect(jwks.keys.map((k) => k.kid)).not.toContain(key.kid);
    expect(harness.logLines.some((line) => line.startsWith('audit checkpoint (interval): '))).toBe(true);

    const verdict = await verifyStateDir({ stateDir });
    expect(verdict).toMatchObject({ ok: true, problems: [], keyThumbprint: key.kid });
    expect(verdict.newestCheckpoint?.trigger).toBe('interval');
  });

  it('do not verify with another key given as the pinned public key', async () => {
    const other = join(harness.stateDir, 'other-key.jwk.json');
    const { publicJwk } = await loadCheckpointKey(join(harness.stateDir, 'elsewhere'));
    writeFileSync(other, JSON.stringify(publicJwk));
    expect(existsSync(join(stateDir, CHECKPOINT_FILE))).toBe(true);
    const verdict = await verifyStateDir({ stateDir, publicKeyFile: other });
    expect(verdict.ok).toBe(false);
    expect(verdict.problems[0]).toMatch(/checkpoint line 1 does not verify/);
  });

  it('that cannot be written leave the gateway degraded in health, saying why, until one is written again', async () => {
    const path = join(stateDir, CHECKPOINT_FILE);
    const saved = readFileSync(path);
    rmSync(path);
    // A folder where the file should be: every append fails.
    mkdirSync(path);
    try {
      const client = await harness.signIn(testPersonas.fnResearcher);
      expect((await client.request('GET', '/v1/models')).status).toBe(200);
      const failing = await eventually(async () => {
        const body = (await (await fetch(`${harness.gateway.url}/healthz`)).json()) as {
          status: string;
          audit: { checkpointFailure: { reason: string } | null };
        };
        return body.audit.checkpointFailure ? body : undefined;
      }, 'a failed checkpoint in health');
      expect(failing.status).toBe('degraded');
      expect(failing.audit.checkpointFailure?.reason).toMatch(/EISDIR|directory/i);
      expect(harness.logLines.some((line) => line.startsWith('writing an audit checkpoint failed'))).toBe(true);
    } finally {
      rmSync(path, { recursive: true });
      writeFileSync(path, saved);
    }
    const recovered = await eventually(async () => {
      const body = (await (await fetch(`${harness.gateway.url}/healthz`)).json()) as {
        status: string;
        audit: { checkpointFailure: unknown };
      };
      return body.audit.checkpointFailure === null ? body : undefined;
    }, 'the next checkpoint written');
    expect(recovered.status).toBe('ok');
    expect((await verifyStateDir({ stateDir })).ok).toBe(true);
  });
});
