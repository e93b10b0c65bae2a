import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ProblemDetails } from '../../shared/problem';
import { Catalog, DEFAULT_CATALOG_PATH } from '../catalog';
import { startGatewayHarness, type GatewayHarness } from '../testing/gateway-harness';
import { testPersonas } from '../testing/identity-provider';
import type { GatewayTestClient } from '../testing/device-client';
import { DEFAULT_POLICIES_DIR, PolicyEngine, type DecisionRequest } from './engine';
import { FAULTS, type Fault } from './testing/faulty-check-worker';

/**
 * Reloads are read, parsed and validated in a worker thread (`checker.ts`). A worker that dies,
 * throws, answers garbage, never answers or lies must refuse the reload: the set in force stays,
 * the refusal shows in `lastRefused` (and `/healthz`), and a fresh worker serves the next reload.
 */
const FIXTURE = new URL('./testing/faulty-check-worker.ts', import.meta.url);
const EDIT_FILE = 'zz-worker-edit.cedar';
const catalog = Catalog.fromFile(DEFAULT_CATALOG_PATH);

/** A valid edit that suspends haiku-4 for everyone when `on`. */
function writeEdit(policiesDir: string, on: boolean, note = ''): void {
  writeFileSync(
    join(policiesDir, EDIT_FILE),
    `// ${note}
@id("worker-haiku-suspended")
@reason("MODEL_SUSPENDED")
forbid (principal, action == Clearance::Action::"invoke", resource == Clearance::Model::"haiku-4")
when { ${on ? 'true' : 'false'} };
`,
  );
}

const haiku: DecisionRequest = {
  userId: 'u',
  principal: { groups: ['research', 'us-persons'], usPerson: true, verificationPending: false },
  device: { assurance: 'software', compliant: true, failedChecks: [] },
  model: catalog.get('haiku-4')!,
};

describe('the policy check worker', () => {
  let dir: string;
  let engine: PolicyEngine;
  afterEach(async () => {
    await engine?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reads and validates a reload on another thread while the event loop keeps turning', async () => {
    dir = mkdtempSync(join(tmpdir(), 'clearance-check-'));
    cpSync(DEFAULT_POLICIES_DIR, dir, { recursive: true });
    engine = PolicyEngine.create({ policiesDir: dir });
    // The first set is checked on this thread, before anything is served.
    expect(engine.lastCheck?.threadId).toBe(threadId);
    // A set large enough that parsing and validating it takes Cedar a while.
    const many = Array.from(
      { length: 300 },
      (_, n) =>
        `@id("bulk-${n}")\n@reason("MODEL_SUSPENDED")\nforbid (principal, action, resource == Clearance::Model::"bulk-${n}")\nwhen { principal.usPerson && context.device.compliant };\n`,
    ).join('\n');
    writeFileSync(join(dir, 'zz-bulk.cedar'), many);
    let turns = 0;
    let counting = true;
    const count = () => {
      turns++;
      if (counting) setImmediate(count);
    };
    setImmediate(count);
    const result = await engine.reload();
    counting = false;
    expect(result).toMatchObject({ ok: true, revision: 2, changed: true });
    expect(engine.policies.some((policy) => policy.id === 'bulk-299')).toBe(true);
    expect(engine.lastCheck?.threadId).not.toBe(threadId);
    expect(engine.lastCheck?.threadId).toBeGreaterThan(0);
    // Checked on this thread, the reload would have held the loop: a turn or two around it at most.
    expect(turns).toBeGreaterThan(20);
  });

  describe('when it fails', () => {
    const mode = new Int32Array(new SharedArrayBuffer(4));
    const fault = (name: Fault) => Atomics.store(mode, 0, FAULTS.indexOf(name));
    let logLines: string[];
    /**
     * Only the hang waits for the timeout (4 s, so a fresh worker can boot on a loaded machine before
     * the next reload gives up on it too): every other fault is answered long before 20 s, even
     * while a loaded machine boots the worker (a short timeout there made them flaky).
     */
    const start = (timeoutMs = 20_000) => {
      engine = PolicyEngine.create({
        policiesDir: dir,
        log: (line) => logLines.push(line),
        checker: { url: FIXTURE, data: { mode }, timeoutMs },
      });
    };
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'clearance-check-'));
      cpSync(DEFAULT_POLICIES_DIR, dir, { recursive: true });
      writeEdit(dir, false);
      logLines = [];
      fault('honest');
    });

    it.each([
      ['exit', /^the policy check worker failed: the worker exited with code 7$/],
      ['throw', /^the policy check worker failed: the check worker broke$/],
      ['garbage', /^the policy check worker failed: the worker answered garbage \(/],
      ['hang', /^the policy check worker failed: no answer within 4000 ms$/],
    ] as const)(
      '%s: refuses the reload, keeps the set in force, and a fresh worker serves the next',
      async (name, reason) => {
        start(name === 'hang' ? 4000 : undefined);
        expect(engine.decide(haiku).effect).toBe('allow');
        writeEdit(dir, true);
        fault(name);
        const refused = await engine.reload();
        expect(refused.ok).toBe(false);
        expect(!refused.ok && refused.error).toMatch(reason);
        expect(engine.revision).toBe(1);
        expect(engine.decide(haiku).effect).toBe('allow');
        expect(engine.lastRefused?.reason).toMatch(reason);
        expect(logLines.at(-1)).toMatch(
          /^policy reload rejected: the policy check worker failed: .*\(keeping revision 1\)$/,
        );

        fault('honest');
        expect(await engine.reload()).toMatchObject({ ok: true, revision: 2, changed: true });
        expect(engine.decide(haiku)).toMatchObject({ effect: 'deny', reason: 'MODEL_SUSPENDED' });
        expect(engine.lastRefused).toBeUndefined();
      },
    );

    it('refuses a well-formed answer that claims a forbid without a valid reason passed', async () => {
      start();
      writeEdit(dir, true);
      fault('forbid-without-reason');
      const refused = await engine.reload();
      expect(refused.ok).toBe(false);
      expect(!refused.ok && refused.error).toMatch(/a forbid needs @reason set to one of/);
      expect(engine.revision).toBe(1);
      expect(engine.decide(haiku).effect).toBe('allow');
      // The refused content stays refused; changed content is checked afresh.
      fault('honest');
      expect((await engine.reload()).ok).toBe(false);
      writeEdit(dir, true, 'published again');
      expect(await engine.reload()).toMatchObject({ ok: true, revision: 2 });
      expect(engine.decide(haiku).effect).toBe('deny');
    });
  });
});

describe('a failing check worker behind the real gateway', () => {
  const mode = new Int32Array(new SharedArrayBuffer(4));
  let harness: GatewayHarness;
  let client: GatewayTestClient;
  beforeAll(async () => {
    harness = await startGatewayHarness({
      reloadDebounceMs: 60_000,
      policyChecker: { url: FIXTURE, data: { mode }, timeoutMs: 5000 },
    });
    writeEdit(harness.policiesDir, false);
    Atomics.store(mode, 0, FAULTS.indexOf('honest'));
    expect((await harness.gateway.reloadPolicies()).ok).toBe(true);
    client = await harness.signIn(testPersonas.usResearcher);
  });
  afterAll(async () => {
    await harness?.close();
  });

  it('answers 409, audits the refused reload, reports it in /healthz and keeps deciding with the set in force', async () => {
    const before = harness.gateway.policy.revision;
    writeEdit(harness.policiesDir, true);
    Atomics.store(mode, 0, FAULTS.indexOf('garbage'));
    const response = await fetch(`${harness.gateway.url}/v1/admin/policies/reload`, {
      method: 'POST',
      headers: { authorization: `Bearer ${harness.gateway.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ actor: 'it-oncall' }),
    });
    expect(response.status).toBe(409);
    expect(ProblemDetails.parse(await response.json()).detail).toMatch(/policy check worker failed/);
    const records = await harness.gateway.audit.list({ limit: 10_000 });
    expect(records.filter((record) => record.kind === 'admin').at(-1)?.data).toMatchObject({
      action: 'policies.reload',
      actor: 'it-oncall',
      ok: false,
      error: expect.stringMatching(/policy check worker failed/),
    });
    const health = (await (await fetch(`${harness.gateway.url}/healthz`)).json()) as {
      status: string;
      policy: { revision: number; lastRefused: { reason: string } | null };
    };
    expect(health.status).toBe('degraded');
    expect(health.policy.revision).toBe(before);
    expect(health.policy.lastRefused?.reason).toMatch(/policy check worker failed: the worker answered garbage/);
    // The edit that suspends haiku-4 was not applied.
    const call = await client.request('POST', '/v1/chat/completions', {
      body: { model: 'haiku-4', max_tokens: 2, messages: [{ role: 'user', content: 'hello' }] },
    });
    expect(call.status).toBe(200);
    await call.text();

    Atomics.store(mode, 0, FAULTS.indexOf('honest'));
    expect(await harness.gateway.reloadPolicies()).toMatchObject({ ok: true, revision: before + 1 });
    const denied = await client.request('POST', '/v1/chat/completions', {
      body: { model: 'haiku-4', max_tokens: 2, messages: [{ role: 'user', content: 'hello' }] },
    });
    expect(denied.status).toBe(403);
    expect(ProblemDetails.parse(await denied.json()).reason).toBe('MODEL_SUSPENDED');
    const healed = (await (await fetch(`${harness.gateway.url}/healthz`)).json()) as { status: string };
    expect(healed.status).toBe('ok');
  });
});
