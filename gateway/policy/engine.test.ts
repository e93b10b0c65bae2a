import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog, DEFAULT_CATALOG_PATH } from '../catalog';
import {
  DEFAULT_POLICIES_DIR,
  PolicyEngine,
  REASON_PRECEDENCE,
  type DecisionRequest,
  type DevicePolicyState,
} from './engine';
import { describeDecision } from './describe';

const catalog = Catalog.fromFile(DEFAULT_CATALOG_PATH);
const model = (id: string) => catalog.get(id)!;
const compliant: DevicePolicyState = { assurance: 'software', compliant: true, failedChecks: [] };
const researcher = (groups: string[]) => ({
  groups,
  usPerson: groups.includes('us-persons'),
  verificationPending: groups.includes('us-person-verification-pending'),
});

let dir: string;
let logLines: string[];
let engine: PolicyEngine;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'clearance-policies-'));
  cpSync(DEFAULT_POLICIES_DIR, dir, { recursive: true });
  logLines = [];
  engine = PolicyEngine.create({ policiesDir: dir, log: (line) => logLines.push(line) });
});
afterEach(async () => {
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('PolicyEngine', () => {
  it('allows a US-person researcher on a compliant device to use the export-controlled model', () => {
    const decision = engine.decide({
      userId: 'u',
      principal: researcher(['research', 'us-persons']),
      device: compliant,
      model: model('mythos-5'),
    });
    expect(decision).toMatchObject({ effect: 'allow', determining: ['staff-baseline'] });
  });

  it('chooses the directive over group membership when both forbid (documented precedence)', () => {
    const decision = engine.decide({
      userId: 'c',
      principal: researcher(['contractors']),
      device: compliant,
      model: model('mythos-5'),
    });
    expect(decision.reason).toBe('EXPORT_CONTROL_US_PERSON_REQUIRED');
    expect(decision.determining).toEqual(['ec-2026-06-us-persons', 'model-required-groups']);
  });

  it('chooses pending verification over the general directive', () => {
    const decision = engine.decide({
      userId: 'p',
      principal: researcher(['research', 'us-person-verification-pending']),
      device: { assurance: 'software', compliant: false, failedChecks: ['firewall'] },
      model: model('mythos-5'),
    });
    expect(decision.reason).toBe('IDENTITY_VERIFICATION_PENDING');
    expect(decision.determining).toEqual([
      'device-compliance-required',
      'ec-2026-06-us-persons',
      'ec-2026-06-verification-pending',
    ]);
  });

  it('puts a suspension before everything else', () => {
    expect(REASON_PRECEDENCE[0]).toBe('MODEL_SUSPENDED');
    const decision = engine.decide({
      userId: 'c',
      principal: researcher([]),
      device: compliant,
      model: model('tempest-1'),
    });
    expect(decision.reason).toBe('MODEL_SUSPENDED');
  });

  it('reports NOT_ENTITLED when no permit applies and no forbid does', () => {
    const decision = engine.decide({
      userId: 'x',
      principal: researcher(['marketing']),
      device: compliant,
      model: model('haiku-4'),
    });
    expect(decision).toMatchObject({ effect: 'deny', reason: 'NOT_ENTITLED', policy: 'default-deny' });
    expect(describeDecision(decision, model('haiku-4'), compliant).message).toBe(
      'No policy grants you access to Haiku 4.',
    );
  });

  it('serves a repeated decision from the cache and forgets it on reload', async () => {
    const request: DecisionRequest = {
      userId: 'u',
      principal: researcher(['research']),
      device: compliant,
      model: model('haiku-4'),
    };
    expect(engine.decide(request).cached).toBe(false);
    expect(engine.decide(request).cached).toBe(true);
    writeFileSync(join(dir, 'extra.cedar'), '@id("extra")\npermit (principal, action, resource) when { false };\n');
    expect(await engine.reload()).toMatchObject({ ok: true, revision: 2 });
    expect(engine.decide(request).cached).toBe(false);
  });

  it('rejects a file that does not parse, names the line, and keeps the last good set', async () => {
    writeFileSync(
      join(dir, 'zz-bad.cedar'),
      '@id("bad")\nforbid (principal, action, resource) when { resource.suspended &&  };\n',
    );
    const result = await engine.reload();
    expect(result).toMatchObject({ ok: false });
    expect(logLines.at(-1)).toMatch(/^policy reload rejected: zz-bad\.cedar: line 2, column \d+: .*keeping revision 1/);
    expect(engine.revision).toBe(1);
    expect(engine.policies.map((p) => p.id)).not.toContain('bad');
  });

  it('rejects a policy that fails schema validation', async () => {
    writeFileSync(
      join(dir, 'typo.cedar'),
      '@id("typo")\npermit (principal, action, resource) when { principal.usPersn };\n',
    );
    const result = await engine.reload();
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error).toMatch(/typo\.cedar: .*usPersn/);
  });

  it('rejects duplicate policy ids across files', async () => {
    writeFileSync(join(dir, 'dup.cedar'), '@id("staff-baseline")\npermit (principal, action, resource);\n');
    const result = await engine.reload();
    expect(!result.ok && result.error).toContain('"staff-baseline" is already used in baseline.cedar');
  });

  it('explains a decision policy by policy', () => {
    const trace = engine.explain({
      userId: 'c',
      principal: researcher(['contractors']),
      device: compliant,
      model: model('atlas-3-research'),
    });
    const applied = trace.policies.filter((p) => p.applies).map((p) => p.id);
    expect(applied).toEqual(expect.arrayContaining(['staff-baseline', 'model-required-groups']));
    expect(applied).not.toContain('ec-2026-06-us-persons');
    expect(trace.decision.reason).toBe('GROUP_MEMBERSHIP_REQUIRED');
  });

  it('answers a repeated question from the cache until the policies reload (timings: npm run bench)', async () => {
    const request: DecisionRequest = {
      userId: 'cache-user',
      principal: researcher(['research']),
      device: compliant,
      model: model('mythos-5'),
    };
    const first = engine.decide(request);
    const again = engine.decide({ ...request });
    expect(first.cached).toBe(false);
    expect(again.cached).toBe(true);
    expect(again.reason).toBe(first.reason);
    writeFileSync(join(dir, 'reload.cedar'), '@id("reload")\npermit (principal, action, resource) when { 1 == 0 };\n');
    await engine.reload();
    const afterReload = engine.decide(request);
    expect(afterReload.cached).toBe(false);
    expect(afterReload.policyRevision).toBeGreaterThan(first.policyRevision);
  });
});

describe('Cedar warm-up', () => {
  it('warms the first set before it serves, and runs no warm-up on the event loop after a reload', async () => {
    const warmed: number[] = [];
    const spy = PolicyEngine.prototype as unknown as { warmOne(snapshot: unknown, index: number): void };
    const original = spy.warmOne;
    spy.warmOne = function (this: PolicyEngine, snapshot, index) {
      warmed.push(index);
      original.call(this, snapshot, index);
    };
    try {
      const fresh = PolicyEngine.create({ policiesDir: dir });
      expect(warmed).toHaveLength(96);
      warmed.length = 0;
      writeFileSync(
        join(dir, 'zz-warm.cedar'),
        '@id("warm-edit")\npermit (principal, action, resource) when { false };\n',
      );
      expect(await fresh.reload()).toMatchObject({ ok: true, revision: 2 });
      // The new set decides correctly at once, and nothing warms it afterwards either.
      expect(
        fresh.decide({
          userId: 'u',
          principal: researcher(['research', 'us-persons']),
          device: compliant,
          model: model('mythos-5'),
        }).effect,
      ).toBe('allow');
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(warmed).toEqual([]);
      await fresh.close();
    } finally {
      spy.warmOne = original;
    }
  });
});
