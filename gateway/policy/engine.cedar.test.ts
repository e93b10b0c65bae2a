import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CatalogModel } from '../catalog';

/**
 * What the engine does when Cedar itself fails (issue 16): the schema or a set that Cedar
 * cannot pre-parse, and a decision or an explanation Cedar cannot evaluate. Cedar is wrapped
 * so each call can be made to fail; everything else is the real Cedar.
 */
const failing = vi.hoisted(() => ({ schema: false, preparse: false, decide: false, explain: false }));
const FAILURE = { type: 'failure', errors: [{ message: 'first' }, { message: 'second' }] };

vi.mock('@cedar-policy/cedar-wasm/nodejs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('@cedar-policy/cedar-wasm/nodejs')>();
  return {
    ...actual,
    preparseSchema: (...args: Parameters<typeof actual.preparseSchema>) =>
      failing.schema ? FAILURE : actual.preparseSchema(...args),
    preparsePolicySet: (...args: Parameters<typeof actual.preparsePolicySet>) =>
      failing.preparse ? FAILURE : actual.preparsePolicySet(...args),
    statefulIsAuthorized: (...args: Parameters<typeof actual.statefulIsAuthorized>) =>
      failing.decide ? FAILURE : actual.statefulIsAuthorized(...args),
    isAuthorized: (...args: Parameters<typeof actual.isAuthorized>) =>
      failing.explain ? FAILURE : actual.isAuthorized(...args),
  };
});

const { inspectPolicies, SCHEMA_PATH } = await import('./check');
const { PolicyChecker } = await import('./checker');
const { PolicyEngine } = await import('./engine');

let dir: string;
let logs: string[];
const engines: import('./engine').PolicyEngine[] = [];
beforeEach(() => {
  Object.assign(failing, { schema: false, preparse: false, decide: false, explain: false });
  dir = mkdtempSync(join(tmpdir(), 'clearance-engine-cedar-'));
  writeFileSync(
    join(dir, 'base.cedar'),
    '@id("staff")\npermit (principal, action == Clearance::Action::"invoke", resource) when { principal.groups.contains("staff") };\n',
  );
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
  rmSync(dir, { recursive: true, force: true });
});
const create = () => {
  const engine = PolicyEngine.create({ policiesDir: dir, log: (line) => logs.push(line) });
  engines.push(engine);
  return engine;
};
const request = {
  userId: 'u',
  principal: { groups: ['staff'], usPerson: false, verificationPending: false },
  device: { assurance: 'software', compliant: true, failedChecks: [] },
  model: {
    id: 'm',
    name: 'M',
    attributes: {
      exportControlled: false,
      suspended: false,
      requiredGroups: [],
      requiresHardware: false,
      requiresCompliantDevice: false,
    },
  } as unknown as CatalogModel,
} as const;

describe('when Cedar fails', () => {
  it('refuses to build an engine on a schema Cedar cannot load', () => {
    failing.schema = true;
    expect(() => create()).toThrow(`Cedar schema ${SCHEMA_PATH} is invalid: first; second`);
  });

  it('refuses a set Cedar cannot pre-parse, at start and on reload, keeping the set in force', async () => {
    failing.preparse = true;
    expect(() => create()).toThrow(
      `Cannot start with the policies in ${dir}: Cedar could not load the set: first; second`,
    );
    failing.preparse = false;
    const engine = create();
    writeFileSync(join(dir, 'more.cedar'), '@id("more")\npermit (principal, action, resource) when { false };\n');
    failing.preparse = true;
    expect(await engine.reload()).toStrictEqual({ ok: false, error: 'Cedar could not load the set: first; second' });
    expect(engine.revision).toBe(1);
    failing.preparse = false;
    expect(engine.decide(request).effect).toBe('allow');
  });

  it('denies a decision Cedar cannot evaluate, says so, and never caches it', () => {
    failing.decide = true;
    // The warm-up's failures are not logged.
    const engine = create();
    expect(logs).toEqual([`policy revision 1 in force: 1 policies from ${dir}`]);
    expect(engine.decide(request)).toStrictEqual({
      effect: 'deny',
      reason: 'NOT_ENTITLED',
      policy: 'evaluation-error',
      annotations: {},
      determining: [],
      errors: ['first', 'second'],
      policyRevision: 1,
      cached: false,
    });
    expect(logs.at(-1)).toBe('policy evaluation failed for u on m: first; second');
    expect(engine.cacheEntries).toBe(0);
    failing.decide = false;
    expect(engine.decide(request)).toMatchObject({ effect: 'allow', cached: false });
  });

  it('explains a policy Cedar cannot evaluate as not applying, with the errors', () => {
    const engine = create();
    failing.explain = true;
    expect(engine.explain(request).policies).toStrictEqual([
      {
        id: 'staff',
        effect: 'permit',
        file: 'base.cedar',
        annotations: { id: 'staff' },
        applies: false,
        error: 'first; second',
      },
    ]);
  });
});
