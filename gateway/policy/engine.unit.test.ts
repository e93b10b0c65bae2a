import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CatalogModel } from '../catalog';
import { currentRequest, observeRequest } from '../observability/context';
import { buildManifest, POLICY_MANIFEST_FILE, readPolicyCandidate } from './candidate';
import { inspectPolicies, type PolicyInspection } from './check';
import { PolicyChecker } from './checker';
import {
  PolicyEngine,
  REASON_PRECEDENCE,
  type DecisionRequest,
  type PolicyLoadResult,
  type PolicyReloadOptions,
} from './engine';

/**
 * The policy engine's rules (issue 16), on this thread: the checker's worker is replaced by
 * `inspectPolicies` run here, so every reload is quick, deterministic and visible to Stryker.
 * Each refusal is checked by its exact reason, and that the set in force stayed.
 */
const HINT =
  'a removal must be published with "npm run policy:publish" (which writes policy-manifest.json) or confirmed by an administrator (POST /v1/admin/policies/reload with {"acceptRemovals": true})';
const INVOKE = 'action == Clearance::Action::"invoke"';
const BASE = `@id("staff")\npermit (principal, ${INVOKE}, resource) when { principal.groups.contains("staff") };\n`;
const FORBIDS = `@id("b-suspended")
@reason("MODEL_SUSPENDED")
forbid (principal, ${INVOKE}, resource) when { resource.suspended };

@id("a-suspended")
@reason("MODEL_SUSPENDED")
@message("a")
forbid (principal, ${INVOKE}, resource) when { resource.suspended && principal.usPerson };

@id("groups")
@reason("GROUP_MEMBERSHIP_REQUIRED")
forbid (principal, ${INVOKE}, resource)
when { !resource.requiredGroups.isEmpty() && !principal.groups.containsAny(resource.requiredGroups) };

@id("device")
@reason("DEVICE_NOT_COMPLIANT")
forbid (principal, ${INVOKE}, resource) when { resource.requiresCompliantDevice && !context.device.compliant };

@id("c-overflow")
@reason("DEVICE_ASSURANCE_TOO_LOW")
forbid (principal, ${INVOKE}, resource) when { resource.requiresHardware && 9223372036854775807 + 1 > 0 };

@id("export")
@reason("EXPORT_CONTROL_US_PERSON_REQUIRED")
forbid (principal, ${INVOKE}, resource)
when {
  resource.exportControlled &&
  (principal.verificationPending || context.device.assurance != "hardware" || context.device.failedChecks.contains("app-integrity"))
};
`;

let dir: string;
let logs: string[];
const engines: PolicyEngine[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'clearance-engine-'));
  write('base.cedar', BASE);
  write('forbids.cedar', FORBIDS);
  logs = [];
  vi.spyOn(PolicyChecker.prototype, 'start').mockImplementation(() => {});
  vi.spyOn(PolicyChecker.prototype, 'inspect').mockImplementation(async (path: string) => ({
    inspection: inspectPolicies(path),
    threadId: 42,
  }));
});
afterEach(async () => {
  await Promise.all(engines.splice(0).map((engine) => engine.close()));
  vi.restoreAllMocks();
  vi.useRealTimers();
  rmSync(dir, { recursive: true, force: true });
});

function write(name: string, text: string): void {
  writeFileSync(join(dir, name), text);
}
function create(options: { cacheSize?: number } = {}): PolicyEngine {
  const engine = PolicyEngine.create({ policiesDir: dir, log: (line) => logs.push(line), ...options });
  engines.push(engine);
  return engine;
}
/** Applies an inspection as if the worker had reported it (a lying worker, for instance). */
function apply(engine: PolicyEngine, inspection: PolicyInspection, options: PolicyReloadOptions = {}) {
  return (
    engine as unknown as {
      apply(
        checked: { inspection: PolicyInspection; threadId: number },
        options: PolicyReloadOptions,
      ): PolicyLoadResult;
    }
  ).apply({ inspection, threadId: 7 }, options);
}
function inspected(): Exclude<PolicyInspection, { readonly readError: string }> {
  const inspection = inspectPolicies(dir);
  if ('readError' in inspection) throw new Error(inspection.readError);
  return inspection;
}
const refusal = (result: PolicyLoadResult) => (result.ok ? undefined : result.error);

const model = (attributes: Partial<CatalogModel['attributes']> = {}, id = 'm'): CatalogModel =>
  ({
    id,
    name: id,
    attributes: {
      exportControlled: false,
      suspended: false,
      requiredGroups: [],
      requiresHardware: false,
      requiresCompliantDevice: false,
      ...attributes,
    },
  }) as CatalogModel;
const ask = (overrides: Partial<DecisionRequest> = {}, attributes: Partial<CatalogModel['attributes']> = {}) =>
  ({
    userId: 'u',
    principal: { groups: ['staff'], usPerson: false, verificationPending: false },
    device: { assurance: 'software', compliant: true, failedChecks: [] },
    model: model(attributes),
    ...overrides,
  }) as DecisionRequest;

describe('REASON_PRECEDENCE', () => {
  it('puts what nobody can change first, then who the user is, then the device', () => {
    expect(REASON_PRECEDENCE).toEqual([
      'MODEL_SUSPENDED',
      'IDENTITY_VERIFICATION_PENDING',
      'EXPORT_CONTROL_US_PERSON_REQUIRED',
      'GROUP_MEMBERSHIP_REQUIRED',
      'DEVICE_NOT_COMPLIANT',
      'DEVICE_ASSURANCE_TOO_LOW',
      'NOT_ENTITLED',
    ]);
  });
});

describe('PolicyEngine.create', () => {
  it('loads the first set on this thread, says so, and starts the worker warming on the folder', () => {
    vi.useFakeTimers({ now: new Date('2026-05-06T07:08:09.000Z'), toFake: ['Date'] });
    const engine = create();
    expect(engine.policiesDir).toBe(dir);
    expect(engine.revision).toBe(1);
    expect(engine.digest).toBe(readPolicyCandidate(dir).contentHash);
    expect(engine.policies.map((policy) => policy.id)).toEqual([
      'staff',
      'b-suspended',
      'a-suspended',
      'groups',
      'device',
      'c-overflow',
      'export',
    ]);
    expect(engine.loadedAt).toBe('2026-05-06T07:08:09.000Z');
    expect(engine.lastRefused).toBeUndefined();
    expect(engine.lastCheck).toEqual({ at: '2026-05-06T07:08:09.000Z', ms: expect.any(Number), threadId });
    expect(engine.namesUsers).toBe(false);
    expect(logs).toEqual([`policy revision 1 in force: 7 policies from ${dir}`]);
    expect(PolicyChecker.prototype.start).toHaveBeenCalledWith(dir);
  });

  it('names the manifest a set was published with', () => {
    const candidate = readPolicyCandidate(dir);
    writeFileSync(
      join(dir, POLICY_MANIFEST_FILE),
      JSON.stringify(buildManifest(candidate.files, 'it', new Date('2026-01-02T03:04:05.000Z'))),
    );
    create();
    expect(logs).toEqual([`policy revision 1 in force: 7 policies from ${dir} (manifest of 2026-01-02T03:04:05.000Z)`]);
  });

  it('refuses to start without a usable set, saying why', () => {
    rmSync(join(dir, 'base.cedar'));
    rmSync(join(dir, 'forbids.cedar'));
    expect(() => create()).toThrow(`Cannot start with the policies in ${dir}: no .cedar files in ${dir}`);
    expect(logs).toEqual([`policy reload rejected: no .cedar files in ${dir} (no policy set in force)`]);
    write('a.cedar', '// nothing\n');
    expect(() => create()).toThrow(
      `Cannot start with the policies in ${dir}: the .cedar files in ${dir} hold no policies`,
    );
    rmSync(dir, { recursive: true });
    expect(() => create()).toThrow(`Cannot start with the policies in ${dir}: cannot read policies folder ${dir}: `);
    expect(PolicyChecker.prototype.start).not.toHaveBeenCalled();
  });

  it('knows when a policy names a user, so decisions depend on the user id', () => {
    write('user.cedar', `@id("alice")\npermit (principal == Clearance::User :: "alice", ${INVOKE}, resource);\n`);
    expect(create().namesUsers).toBe(true);
    write(
      'user.cedar',
      `@id("alice")\npermit (principal == User::"alice", ${INVOKE}, resource);\n`.replace(
        'User::',
        'Clearance::User::',
      ),
    );
    expect(create().namesUsers).toBe(true);
  });

  it('ends the worker on close', async () => {
    const close = vi.spyOn(PolicyChecker.prototype, 'close');
    const engine = create();
    await engine.close();
    expect(close).toHaveBeenCalledTimes(1);
  });
});

describe('decisions', () => {
  it('allows what a permit covers and no forbid denies, naming the permits', () => {
    const decision = create().decide(ask());
    expect(decision).toStrictEqual({
      effect: 'allow',
      annotations: {},
      determining: ['staff'],
      errors: [],
      policyRevision: 1,
      cached: false,
    });
  });

  it('denies by default when no permit covers the user', () => {
    const decision = create().decide(ask({ principal: { groups: [], usPerson: false, verificationPending: false } }));
    expect(decision).toStrictEqual({
      effect: 'deny',
      reason: 'NOT_ENTITLED',
      policy: 'default-deny',
      annotations: {},
      determining: [],
      errors: [],
      policyRevision: 1,
      cached: false,
    });
  });

  it('chooses the forbid by reason precedence, then by lowest id, and lists every forbid that applied', () => {
    const engine = create();
    const suspended = engine.decide(
      ask(
        { principal: { groups: ['staff'], usPerson: true, verificationPending: false } },
        { suspended: true, requiredGroups: ['x'], requiresCompliantDevice: true },
      ),
    );
    expect(suspended).toMatchObject({
      effect: 'deny',
      reason: 'MODEL_SUSPENDED',
      policy: 'a-suspended',
      annotations: { id: 'a-suspended', reason: 'MODEL_SUSPENDED', message: 'a' },
      determining: ['a-suspended', 'b-suspended', 'groups'],
    });
    const device = { assurance: 'software', compliant: false, failedChecks: ['firewall'] } as const;
    expect(engine.decide(ask({ device }, { requiredGroups: ['x'], requiresCompliantDevice: true }))).toMatchObject({
      reason: 'GROUP_MEMBERSHIP_REQUIRED',
      policy: 'groups',
      determining: ['device', 'groups'],
    });
    expect(engine.decide(ask({ device }, { requiresCompliantDevice: true }))).toMatchObject({
      reason: 'DEVICE_NOT_COMPLIANT',
      policy: 'device',
      determining: ['device'],
    });
    expect(engine.decide(ask({ device }, { suspended: true, requiresCompliantDevice: true }))).toMatchObject({
      reason: 'MODEL_SUSPENDED',
      policy: 'b-suspended',
      determining: ['b-suspended', 'device'],
    });
  });

  it('breaks a tie between forbids of one reason by lowest id, in whichever order they come', () => {
    // `c-overflow` errors and is listed after the forbids that applied: one applied forbid of the same
    // reason sorts before it by id, the other after, so the tie-break must compare both ways.
    write(
      'ties.cedar',
      `@id("aa-hardware")
@reason("DEVICE_ASSURANCE_TOO_LOW")
forbid (principal, ${INVOKE}, resource) when { resource.requiresHardware && principal.usPerson };

@id("d-hardware")
@reason("DEVICE_ASSURANCE_TOO_LOW")
forbid (principal, ${INVOKE}, resource) when { resource.requiresHardware && !principal.usPerson };
`,
    );
    const engine = create();
    const usPerson = { groups: ['staff'], usPerson: true, verificationPending: false };
    expect(engine.decide(ask({ principal: usPerson }, { requiresHardware: true }))).toMatchObject({
      reason: 'DEVICE_ASSURANCE_TOO_LOW',
      policy: 'aa-hardware',
      determining: ['aa-hardware', 'c-overflow'],
    });
    expect(engine.decide(ask({}, { requiresHardware: true }))).toMatchObject({
      reason: 'DEVICE_ASSURANCE_TOO_LOW',
      policy: 'c-overflow',
      determining: ['c-overflow', 'd-hardware'],
    });
  });

  it('gives Cedar every attribute of the user, the device and the model', () => {
    const engine = create();
    const hardware = { assurance: 'hardware', compliant: true, failedChecks: [] } as const;
    expect(engine.decide(ask({ device: hardware }, { exportControlled: true })).effect).toBe('allow');
    expect(engine.decide(ask({}, { exportControlled: true }))).toMatchObject({ policy: 'export' });
    expect(
      engine.decide(
        ask(
          { device: hardware, principal: { groups: ['staff'], usPerson: false, verificationPending: true } },
          { exportControlled: true },
        ),
      ),
    ).toMatchObject({ policy: 'export' });
    expect(
      engine.decide(
        ask({ device: { ...hardware, failedChecks: ['firewall', 'app-integrity'] } }, { exportControlled: true }),
      ),
    ).toMatchObject({ policy: 'export' });
    expect(
      engine.decide(ask({ device: { ...hardware, failedChecks: ['firewall'] } }, { exportControlled: true })).effect,
    ).toBe('allow');
  });

  it('lists the forbids that applied and those that errored in id order', () => {
    const engine = create();
    const device = { assurance: 'software', compliant: false, failedChecks: [] } as const;
    expect(engine.decide(ask({ device }, { requiresHardware: true, requiresCompliantDevice: true }))).toMatchObject({
      reason: 'DEVICE_NOT_COMPLIANT',
      policy: 'device',
      determining: ['c-overflow', 'device'],
    });
  });

  it('treats a forbid that errors as applying, and never caches a decision with errors', () => {
    const engine = create();
    const request = ask({}, { requiresHardware: true });
    const decision = engine.decide(request);
    expect(decision).toMatchObject({
      effect: 'deny',
      reason: 'DEVICE_ASSURANCE_TOO_LOW',
      policy: 'c-overflow',
      determining: ['c-overflow'],
      cached: false,
    });
    expect(decision.errors).toHaveLength(1);
    expect(decision.errors[0]?.startsWith('c-overflow: ')).toBe(true);
    expect(engine.cacheEntries).toBe(0);
    expect(engine.decide(request).cached).toBe(false);
    // Ranked with the forbids that applied.
    expect(engine.decide(ask({}, { requiresHardware: true, suspended: true }))).toMatchObject({
      reason: 'MODEL_SUSPENDED',
      determining: ['b-suspended', 'c-overflow'],
    });
  });

  it('reports a permit that errors and still denies by default', () => {
    write(
      'base.cedar',
      `${BASE}\n@id("broken-permit")\npermit (principal, ${INVOKE}, resource) when { 9223372036854775807 + 1 > 0 };\n`,
    );
    const engine = create();
    const decision = engine.decide(ask({ principal: { groups: [], usPerson: false, verificationPending: false } }));
    expect(decision).toMatchObject({ effect: 'deny', reason: 'NOT_ENTITLED', policy: 'default-deny', determining: [] });
    expect(decision.errors).toHaveLength(1);
    expect(decision.errors[0]?.startsWith('broken-permit: ')).toBe(true);
    const allowed = engine.decide(ask());
    expect(allowed).toMatchObject({ effect: 'allow', determining: ['staff'] });
    expect(allowed.errors[0]?.startsWith('broken-permit: ')).toBe(true);
  });

  it('records the time a decision took in the request it serves', () => {
    const engine = create();
    const observed = observeRequest('r', () => {
      const started = performance.now();
      engine.decide(ask());
      engine.decide(ask());
      return { spent: performance.now() - started, phases: currentRequest()!.phases };
    });
    expect(Object.keys(observed.phases)).toEqual(['policy']);
    expect(observed.phases.policy).toBeGreaterThan(0);
    expect(observed.phases.policy).toBeLessThanOrEqual(observed.spent);
  });
});

describe('the decision cache', () => {
  it('shares one entry between users who look alike to Cedar, whatever the order of their groups and checks', () => {
    const engine = create();
    const device = { assurance: 'software', compliant: false, failedChecks: ['firewall', 'screen-lock'] } as const;
    const first = engine.decide(
      ask({ userId: 'a', principal: { groups: ['staff', 'x'], usPerson: false, verificationPending: false }, device }),
    );
    expect(first.cached).toBe(false);
    const second = engine.decide(
      ask({
        userId: 'b',
        principal: { groups: ['x', 'staff'], usPerson: false, verificationPending: false },
        device: { ...device, failedChecks: ['screen-lock', 'firewall'] },
      }),
    );
    expect(second).toEqual({ ...first, cached: true });
    expect(engine.cacheEntries).toBe(1);
  });

  it.each([
    ['groups', { principal: { groups: ['staff', 'y'], usPerson: false, verificationPending: false } }, {}],
    ['US-person status', { principal: { groups: ['staff'], usPerson: true, verificationPending: false } }, {}],
    ['pending verification', { principal: { groups: ['staff'], usPerson: false, verificationPending: true } }, {}],
    ['device assurance', { device: { assurance: 'hardware', compliant: true, failedChecks: [] } }, {}],
    ['device compliance', { device: { assurance: 'software', compliant: false, failedChecks: [] } }, {}],
    ['failing checks', { device: { assurance: 'software', compliant: true, failedChecks: ['firewall'] } }, {}],
    ['the model', { model: model({}, 'other') }, {}],
    ['model attributes', {}, { exportControlled: true }],
  ] as const)('keeps apart requests that differ in %s', (_what, overrides, attributes) => {
    const engine = create();
    expect(engine.decide(ask()).cached).toBe(false);
    expect(engine.decide(ask(overrides as Partial<DecisionRequest>, attributes)).cached).toBe(false);
    expect(engine.cacheEntries).toBe(2);
  });

  it('keeps users apart when a policy names a user', () => {
    write('user.cedar', `@id("alice")\npermit (principal == Clearance::User::"alice", ${INVOKE}, resource);\n`);
    const engine = create();
    expect(engine.decide(ask({ userId: 'alice' })).cached).toBe(false);
    expect(engine.decide(ask({ userId: 'bob' })).cached).toBe(false);
    expect(engine.decide(ask({ userId: 'alice' })).cached).toBe(true);
  });

  it('drops the oldest decision when full', () => {
    const engine = create({ cacheSize: 2 });
    const one = ask({ userId: '1' }, {});
    const two = ask({ userId: '2' }, { exportControlled: true });
    const three = ask({ userId: '3' }, { requiresCompliantDevice: true });
    engine.decide(one);
    engine.decide(two);
    engine.decide(three);
    expect(engine.cacheEntries).toBe(2);
    expect(engine.decide(two).cached).toBe(true);
    expect(engine.decide(three).cached).toBe(true);
    expect(engine.decide(one).cached).toBe(false);
  });
});

describe('a decision cache of size 0', () => {
  it('keeps nothing', () => {
    const engine = create({ cacheSize: 0 });
    engine.decide(ask());
    expect(engine.decide(ask()).cached).toBe(false);
    expect(engine.cacheEntries).toBe(0);
  });
});

describe('explain', () => {
  it('evaluates each policy on its own, with the errors of each', () => {
    const engine = create();
    const request = ask({}, { suspended: true, requiresHardware: true });
    const trace = engine.explain(request);
    expect(trace.precedence).toBe(REASON_PRECEDENCE);
    expect(trace.decision).toMatchObject({
      effect: 'deny',
      reason: 'MODEL_SUSPENDED',
      policy: 'b-suspended',
      cached: false,
    });
    const byId = Object.fromEntries(trace.policies.map((entry) => [entry.id, entry]));
    expect(trace.policies.map((entry) => entry.id)).toEqual(engine.policies.map((policy) => policy.id));
    expect(byId.staff).toStrictEqual({
      id: 'staff',
      effect: 'permit',
      file: 'base.cedar',
      annotations: { id: 'staff' },
      applies: true,
    });
    expect(byId['b-suspended']).toStrictEqual({
      id: 'b-suspended',
      effect: 'forbid',
      file: 'forbids.cedar',
      annotations: { id: 'b-suspended', reason: 'MODEL_SUSPENDED' },
      applies: true,
    });
    expect(byId['a-suspended']).toMatchObject({ applies: false });
    expect('error' in byId['a-suspended']!).toBe(false);
    expect(byId['c-overflow']).toMatchObject({ applies: false, error: expect.stringContaining('overflow') });
    // Explaining caches nothing.
    expect(engine.cacheEntries).toBe(0);
  });
});

describe('reload', () => {
  it('swaps in a changed set, forgets cached decisions and tells listeners', async () => {
    const engine = create();
    const seen: number[] = [];
    const subscription = engine.onDidChange((revision) => seen.push(revision));
    engine.decide(ask());
    write('more.cedar', `@id("more")\npermit (principal, ${INVOKE}, resource) when { false };\n`);
    const result = await engine.reload();
    expect(result).toStrictEqual({
      ok: true,
      revision: 2,
      digest: readPolicyCandidate(dir).contentHash,
      count: 8,
      changed: true,
    });
    expect(engine.digest).toBe(readPolicyCandidate(dir).contentHash);
    expect(engine.cacheEntries).toBe(0);
    expect(engine.decide(ask())).toMatchObject({ policyRevision: 2, cached: false });
    expect(engine.lastCheck).toMatchObject({ threadId: 42 });
    expect(seen).toEqual([2]);
    expect(logs.at(-1)).toBe(`policy revision 2 in force: 8 policies from ${dir}`);
    subscription.dispose();
    write('more.cedar', `@id("more")\npermit (principal, ${INVOKE}, resource) when { true };\n`);
    expect(await engine.reload()).toMatchObject({ ok: true, revision: 3 });
    expect(seen).toEqual([2]);
  });

  it('answers "unchanged" for the set in force, keeping its revision, cache and listeners quiet', async () => {
    const engine = create();
    const seen: number[] = [];
    engine.onDidChange((revision) => seen.push(revision));
    engine.decide(ask());
    const lines = logs.length;
    expect(await engine.reload()).toStrictEqual({
      ok: true,
      revision: 1,
      digest: engine.digest,
      count: 7,
      changed: false,
    });
    expect(engine.cacheEntries).toBe(1);
    expect(seen).toEqual([]);
    expect(logs).toHaveLength(lines);
  });

  it('logs a listener that throws and tells the others', async () => {
    const engine = create();
    const seen: number[] = [];
    engine.onDidChange(() => {
      throw new Error('listener broke');
    });
    engine.onDidChange((revision) => seen.push(revision));
    write('more.cedar', `@id("more")\npermit (principal, ${INVOKE}, resource) when { false };\n`);
    expect((await engine.reload()).ok).toBe(true);
    expect(seen).toEqual([2]);
    expect(logs).toContain('policy change listener failed: Error: listener broke');
  });

  it('refuses a broken set, keeps the one in force, logs it once per content and clears once fixed', async () => {
    vi.useFakeTimers({ now: new Date('2026-05-06T07:08:09.000Z'), toFake: ['Date'] });
    const engine = create();
    write('bad.cedar', '@id("bad")\npermit (principal, action, resource) when { x };\n');
    const error = 'bad.cedar: line 2, column 45: invalid variable: x';
    expect(await engine.reload()).toStrictEqual({ ok: false, error });
    expect(engine.revision).toBe(1);
    expect(engine.lastRefused).toStrictEqual({
      at: '2026-05-06T07:08:09.000Z',
      reason: error,
      contentHash: readPolicyCandidate(dir).contentHash,
    });
    expect(logs.at(-1)).toBe(`policy reload rejected: ${error} (keeping revision 1)`);
    const lines = logs.length;
    vi.setSystemTime(new Date('2026-05-06T08:00:00.000Z'));
    expect(await engine.reload()).toStrictEqual({ ok: false, error });
    expect(logs).toHaveLength(lines);
    // The same content is not checked again: the first refusal stands as it was.
    expect(engine.lastRefused?.at).toBe('2026-05-06T07:08:09.000Z');
    rmSync(join(dir, 'bad.cedar'));
    expect(await engine.reload()).toMatchObject({ ok: true, revision: 1, changed: false });
    expect(engine.lastRefused).toBeUndefined();
  });

  it('forgets a refusal once another set is in force', async () => {
    const engine = create();
    write('bad.cedar', '@id("bad")\npermit (principal, action, resource) when { x };\n');
    expect((await engine.reload()).ok).toBe(false);
    write('bad.cedar', `@id("bad")\npermit (principal, ${INVOKE}, resource) when { false };\n`);
    expect(await engine.reload()).toMatchObject({ ok: true, revision: 2, changed: true });
    expect(engine.lastRefused).toBeUndefined();
  });

  it('refuses when the check fails, logging each distinct failure once', async () => {
    const engine = create();
    const inspect = vi.mocked(PolicyChecker.prototype.inspect);
    inspect.mockRejectedValue(new Error('the policy check worker failed: boom'));
    const error = 'the policy check worker failed: boom';
    expect(await engine.reload()).toStrictEqual({ ok: false, error });
    expect(await engine.reload()).toStrictEqual({ ok: false, error });
    expect(engine.lastRefused).toMatchObject({ reason: error, contentHash: `check-failed:${error}` });
    expect(logs.filter((line) => line.startsWith('policy reload rejected'))).toEqual([
      `policy reload rejected: ${error} (keeping revision 1)`,
    ]);
    inspect.mockRejectedValue(new Error('other'));
    expect(await engine.reload()).toStrictEqual({ ok: false, error: 'other' });
    expect(logs.at(-1)).toBe('policy reload rejected: other (keeping revision 1)');
    expect(engine.revision).toBe(1);
  });

  it('refuses a folder that cannot be read, logging it once', async () => {
    const engine = create();
    rmSync(dir, { recursive: true });
    const first = await engine.reload();
    expect(refusal(first)?.startsWith(`cannot read policies folder ${dir}: `)).toBe(true);
    expect(engine.lastRefused?.contentHash).toBe(`unreadable:${refusal(first)}`);
    expect(await engine.reload()).toStrictEqual(first);
    expect(logs.filter((line) => line.startsWith('policy reload rejected'))).toHaveLength(1);
  });

  it('runs reloads one after the other, each against the set the previous one left', async () => {
    const engine = create();
    const inspect = vi.mocked(PolicyChecker.prototype.inspect);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const order: string[] = [];
    inspect.mockImplementationOnce(async (path: string) => {
      order.push('first inspect');
      await gate;
      return { inspection: inspectPolicies(path), threadId: 1 };
    });
    write('more.cedar', `@id("more")\npermit (principal, ${INVOKE}, resource) when { false };\n`);
    const first = engine.reload();
    const second = engine.reload().then((result) => {
      order.push('second done');
      return result;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual(['first inspect']);
    expect(inspect).toHaveBeenCalledTimes(1);
    release();
    expect(await first).toMatchObject({ ok: true, revision: 2, changed: true });
    expect(await second).toMatchObject({ ok: true, revision: 2, changed: false });
  });
});

describe('the rules against the set in force', () => {
  it('refuses a missing or emptied file of the set in force, naming each', async () => {
    const engine = create();
    write('extra.cedar', `@id("extra")\npermit (principal, ${INVOKE}, resource) when { false };\n`);
    expect((await engine.reload()).ok).toBe(true);
    rmSync(join(dir, 'extra.cedar'));
    write('base.cedar', ' \n\t\n');
    expect(refusal(await engine.reload())).toBe(
      `extra.cedar of the set in force is missing; base.cedar of the set in force is empty; ${HINT}`,
    );
    expect(engine.revision).toBe(2);
    expect(engine.decide(ask()).effect).toBe('allow');
  });

  it('refuses a set that lost a forbid of the set in force, naming each', async () => {
    const engine = create();
    write(
      'forbids.cedar',
      FORBIDS.split('\n\n')
        .filter((part) => !part.includes('"groups"') && !part.includes('"device"'))
        .join('\n\n'),
    );
    expect(refusal(await engine.reload())).toBe(
      `forbid "groups" (forbids.cedar), "device" (forbids.cedar) of the set in force would be removed; ${HINT}`,
    );
    expect(engine.decide(ask({}, { requiredGroups: ['x'] })).reason).toBe('GROUP_MEMBERSHIP_REQUIRED');
  });

  it('lets a permit go without confirmation', async () => {
    const engine = create();
    write(
      'base.cedar',
      `// everybody is denied now\n@id("nobody")\npermit (principal, ${INVOKE}, resource) when { false };\n`,
    );
    expect(await engine.reload()).toMatchObject({ ok: true, revision: 2 });
  });

  it('accepts removals an administrator confirms, also of content refused before', async () => {
    const engine = create();
    rmSync(join(dir, 'forbids.cedar'));
    expect(refusal(await engine.reload())).toBe(`forbids.cedar of the set in force is missing; ${HINT}`);
    expect(await engine.reload({ acceptRemovals: true })).toMatchObject({ ok: true, revision: 2, count: 1 });
    expect(engine.decide(ask({}, { suspended: true })).effect).toBe('allow');
  });

  it('accepts removals a manifest carries', async () => {
    const engine = create();
    rmSync(join(dir, 'forbids.cedar'));
    write('base.cedar', `${BASE}\n`);
    writeFileSync(join(dir, POLICY_MANIFEST_FILE), JSON.stringify(buildManifest(readPolicyCandidate(dir).files, 'it')));
    expect(await engine.reload()).toMatchObject({ ok: true, revision: 2, count: 1 });
  });

  it('refuses a folder that does not match its manifest, whatever else', async () => {
    const engine = create();
    writeFileSync(
      join(dir, POLICY_MANIFEST_FILE),
      JSON.stringify(buildManifest(new Map([['base.cedar', BASE]]), 'it')),
    );
    expect(refusal(await engine.reload({ acceptRemovals: true }))).toBe(
      'the folder does not match policy-manifest.json (forbids.cedar is not in the manifest); publish with "npm run policy:publish" or restore the files',
    );
  });

  it('refuses an empty folder even when removals are accepted', async () => {
    const engine = create();
    rmSync(join(dir, 'base.cedar'));
    rmSync(join(dir, 'forbids.cedar'));
    expect(refusal(await engine.reload({ acceptRemovals: true }))).toBe(`no .cedar files in ${dir}`);
    expect(engine.revision).toBe(1);
  });

  it('refuses a set that fails schema validation', async () => {
    const engine = create();
    write('typo.cedar', '@id("typo")\npermit (principal, action, resource) when { principal.usPersn };\n');
    expect(refusal(await engine.reload())).toBe(
      'schema validation failed: typo.cedar: for policy `typo`, attribute `usPersn` on entity type `Clearance::User` not found (did you mean `usPerson`?)',
    );
  });

  it('checks again what a worker reports: unique ids, known files, forbid annotations, some policies', () => {
    const engine = create();
    const good = inspected();
    if (!('policies' in good.parsed)) throw new Error('expected policies');
    const policies = good.parsed.policies;
    const staff = policies[0]!;
    let lies = 0;
    /** Each lie is new content: the same content would be answered from the set in force or the last refusal. */
    const lie = (changed: typeof policies, options: PolicyReloadOptions = {}) =>
      apply(
        engine,
        {
          ...good,
          candidate: { ...good.candidate, contentHash: (++lies).toString(16).padStart(64, '0') },
          parsed: { policies: changed },
        },
        options,
      );
    expect(refusal(lie([...policies, { ...staff, file: 'forbids.cedar' }]))).toBe(
      'forbids.cedar: policy id "staff" is already used in base.cedar',
    );
    expect(refusal(lie([...policies, { ...staff, id: 'ghost', file: 'ghost.cedar' }]))).toBe(
      'policy "ghost" names an unknown file',
    );
    const forbid = policies.find((policy) => policy.id === 'device')!;
    expect(refusal(lie(policies.map((p) => (p === forbid ? { ...p, annotations: { id: 'device' } } : p))))).toBe(
      `forbids.cedar ("device"): a forbid needs @reason set to one of EXPORT_CONTROL_US_PERSON_REQUIRED, IDENTITY_VERIFICATION_PENDING, DEVICE_NOT_COMPLIANT, DEVICE_ASSURANCE_TOO_LOW, GROUP_MEMBERSHIP_REQUIRED, MODEL_SUSPENDED, NOT_ENTITLED`,
    );
    expect(refusal(lie([], { acceptRemovals: true }))).toBe(`the .cedar files in ${dir} hold no policies`);
    // A permit's annotations are not a forbid's business.
    const permitted = apply(engine, {
      ...good,
      candidate: { ...good.candidate, contentHash: 'f'.repeat(64) },
      parsed: {
        policies: policies.map((p) => (p === staff ? { ...p, annotations: { id: 'staff', reason: 'BECAUSE' } } : p)),
      },
    });
    expect(permitted).toMatchObject({ ok: true, revision: 2 });
    expect(engine.revision).toBe(2);
    expect(engine.lastCheck?.threadId).toBe(7);
  });

  it('refuses a manifest error and a validation error a worker reports', () => {
    const engine = create();
    const good = inspected();
    const fresh = { ...good.candidate, contentHash: 'e'.repeat(64) };
    expect(refusal(apply(engine, { ...good, candidate: fresh, manifestError: 'manifest says no' }))).toBe(
      'manifest says no',
    );
    expect(
      refusal(
        apply(engine, { ...good, candidate: { ...fresh, contentHash: 'd'.repeat(64) }, validationError: 'invalid' }),
      ),
    ).toBe('invalid');
    expect(engine.revision).toBe(1);
  });

  it('pre-parses each new set into the slot not in force', async () => {
    const engine = create();
    const slots = () => (engine as unknown as { snapshot: { slot: string } }).snapshot.slot;
    const first = slots();
    write('more.cedar', `@id("more")\npermit (principal, ${INVOKE}, resource) when { false };\n`);
    await engine.reload();
    const second = slots();
    expect(second).not.toBe(first);
    write('more.cedar', `@id("more")\npermit (principal, ${INVOKE}, resource) when { true };\n`);
    await engine.reload();
    expect(slots()).toBe(first);
    // A refused candidate leaves the slot in force alone.
    write('bad.cedar', '@id("bad")\npermit (principal, action, resource) when { x };\n');
    await engine.reload();
    expect(slots()).toBe(first);
    expect(engine.decide(ask()).effect).toBe('allow');
  });
});
