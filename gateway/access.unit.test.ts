import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ProblemDetails } from '../shared/problem';
import { AccessService, FANOUT_SLICE_MS, principalFromGroups, type ActiveSession } from './access';
import { Catalog, type CatalogFile } from './catalog';
import { EventHub } from './events/hub';
import { observeRequest, currentRequest } from './observability/context';
import type { DecisionRequest, PolicyDecision, PolicyEngine, PolicyInfo } from './policy/engine';
import { MemoryAuditLog } from './testing/memory-audit';
import type { EntitlementVersions } from './store/entitlement-versions';

/**
 * In-process tests of the access service: a scripted policy engine (the decisions are what the
 * service acts on), an in-memory audit log and version store, and the real event hub.
 */

type ModelInput = CatalogFile['models'][number];

const attributes = {
  exportControlled: false,
  suspended: false,
  requiredGroups: [],
  requiresHardware: false,
  requiresCompliantDevice: false,
};

function modelOf(id: string, extra: Partial<ModelInput> = {}): ModelInput {
  return { id, name: `Model ${id}`, upstream: { kind: 'demo' }, attributes, ...extra };
}

function catalogOf(...models: ModelInput[]): Catalog {
  return Catalog.fromJson({ models });
}

/** A policy engine whose decisions the test scripts; it records every question. */
class ScriptedEngine {
  revision = 1;
  namesUsers = false;
  policies: PolicyInfo[] = [];
  readonly calls: DecisionRequest[] = [];
  rule: (request: DecisionRequest) => Partial<PolicyDecision> = () => ({ effect: 'allow' });
  /** Runs after each decision (tests move a fake clock here). */
  after: () => void = () => {};

  decide(request: DecisionRequest): PolicyDecision {
    this.calls.push(request);
    const decision: PolicyDecision = {
      effect: 'allow',
      annotations: {},
      determining: [],
      errors: [],
      policyRevision: this.revision,
      cached: false,
      ...this.rule(request),
    };
    this.after();
    return decision;
  }
}

/** Versions as the SQLite store keeps them; `later` makes each write durable on a later turn of the event loop. */
class MemoryVersions implements EntitlementVersions {
  readonly rows = new Map<string, { ver: number; fingerprint: string }>();
  readonly writes: { userId: string; fingerprint: string }[] = [];
  later = false;
  readonly failFor = new Set<string>();
  pending = 0;
  most = 0;

  async versionFor(userId: string, fingerprint: string): Promise<number> {
    this.writes.push({ userId, fingerprint });
    this.pending++;
    this.most = Math.max(this.most, this.pending);
    try {
      if (this.later) await new Promise((resolve) => setTimeout(resolve, 1));
      if (this.failFor.has(userId)) throw new Error(`disk full for ${userId}`);
      const row = this.rows.get(userId);
      if (row && row.fingerprint === fingerprint) return row.ver;
      const ver = (row?.ver ?? 0) + 1;
      this.rows.set(userId, { ver, fingerprint });
      return ver;
    } finally {
      this.pending--;
    }
  }
  async current(userId: string): Promise<number> {
    return this.rows.get(userId)?.ver ?? 0;
  }
}

function sessionOf(userId: string, extra: Partial<ActiveSession> = {}): ActiveSession {
  return {
    sessionId: `session-${userId}`,
    userId,
    jkt: `jkt-${userId}`,
    identity: { name: 'N', username: `${userId}@example.test`, groups: ['research'] },
    principal: { groups: ['research'], usPerson: true, verificationPending: false },
    device: { id: `device-${userId}`, assurance: 'software', compliant: true, failedChecks: [] },
    expiresAt: Math.floor(Date.now() / 1000) + 600,
    ...extra,
  };
}

interface Setup {
  engine: ScriptedEngine;
  audit: MemoryAuditLog;
  versions: MemoryVersions;
  events: EventHub;
  logs: string[];
  access: AccessService;
  catalog: { current: Catalog };
}

function setup(catalog: Catalog = catalogOf(modelOf('alpha')), sliceMs?: number): Setup {
  const engine = new ScriptedEngine();
  const audit = new MemoryAuditLog();
  const versions = new MemoryVersions();
  const events = new EventHub();
  const logs: string[] = [];
  const holder = { current: catalog };
  const access = new AccessService(
    engine as unknown as PolicyEngine,
    () => holder.current,
    audit,
    versions,
    events,
    (line) => logs.push(line),
    ...(sliceMs === undefined ? [] : [sliceMs]),
  );
  return { engine, audit, versions, events, logs, access, catalog: holder };
}

/** Subscribes a stream for the session's device; returns the events it received (name and data). */
function listen(events: EventHub, session: ActiveSession): { event: string; data: unknown }[] {
  const received: { event: string; data: unknown }[] = [];
  events.subscribe(session.userId, session.jkt, {
    write: (text) => {
      const name = /^event: (.*)$/m.exec(text)?.[1] ?? '';
      received.push({ event: name, data: JSON.parse(/^data: (.*)$/m.exec(text)![1]!) });
    },
    close: () => {},
  });
  return received;
}

function inFlight(session: ActiveSession, modelId: string) {
  const cuts: ProblemDetails[] = [];
  return { completion: { session, modelId, cut: (problem: ProblemDetails) => cuts.push(problem) }, cuts };
}

const denyExport: Partial<PolicyDecision> = {
  effect: 'deny',
  reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
  policy: 'ec-us',
  determining: ['ec-us'],
  annotations: { reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED', message: '{model} needs a US person.' },
};

const exportPolicy: PolicyInfo = {
  id: 'ec-us',
  effect: 'forbid',
  file: 'ec.cedar',
  text: '',
  annotations: {
    reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
    title: 'US persons only',
    message: '{model} needs a US person.',
    since: '2026-06-01',
  },
};

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

afterEach(() => {
  vi.useRealTimers();
});

describe('principalFromGroups', () => {
  const mapping = { usPersonGroup: 'us-persons', verificationPendingGroup: 'pending' } as Parameters<
    typeof principalFromGroups
  >[1];

  it('maps each configured group to its attribute, and keeps the groups', () => {
    const groups = ['research', 'us-persons'];
    const principal = principalFromGroups(groups, mapping);
    expect(principal).toEqual({ groups: ['research', 'us-persons'], usPerson: true, verificationPending: false });
    expect(principal.groups).not.toBe(groups);
    expect(principalFromGroups(['pending'], mapping)).toEqual({
      groups: ['pending'],
      usPerson: false,
      verificationPending: true,
    });
    expect(principalFromGroups([], mapping)).toEqual({ groups: [], usPerson: false, verificationPending: false });
  });
});

describe('deciding and auditing one request', () => {
  it('asks the engine about exactly this user, principal, device and model', () => {
    const { engine, access, catalog } = setup();
    const session = sessionOf('ana');
    const model = catalog.current.get('alpha')!;
    const allowed = access.decide(session, model);
    expect(engine.calls).toEqual([{ userId: 'ana', principal: session.principal, device: session.device, model }]);
    expect(allowed.model).toBe(model);
    expect(allowed.decision.effect).toBe('allow');
    expect(allowed.outcome).toEqual({ status: 'allowed' });
    engine.rule = () => denyExport;
    expect(access.decide(session, model).outcome).toMatchObject({
      status: 'denied',
      reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
      message: 'Model alpha needs a US person.',
    });
  });

  it('audits a decision with who, which device, what was decided and under which revisions', async () => {
    const { engine, audit, access, catalog } = setup();
    engine.rule = () => ({ ...denyExport, errors: ['e1'], policyRevision: 7 });
    const session = sessionOf('ana');
    const decided = access.decide(session, catalog.current.get('alpha')!);
    const observation = await observeRequest('req-1', async () => {
      const record = await access.record(session, decided, { endpoint: 'chat.completions', extra: 1 });
      expect(record.decisionId).toBe('dec_1');
      return currentRequest()!;
    });
    expect(observation.decision).toBe('deny');
    expect(typeof observation.phases.audit).toBe('number');
    expect(Object.keys(observation.phases)).toEqual(['audit']);
    expect(audit.entries).toEqual([
      {
        kind: 'access',
        subject: 'ana',
        data: {
          endpoint: 'chat.completions',
          extra: 1,
          requestId: 'req-1',
          user: 'ana',
          username: 'ana@example.test',
          sessionId: 'session-ana',
          deviceId: 'device-ana',
          jkt: 'jkt-ana',
          model: 'alpha',
          effect: 'deny',
          reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
          policy: 'ec-us',
          determining: ['ec-us'],
          errors: ['e1'],
          policyRevision: 7,
          catalogRevision: catalog.current.revision,
        },
      },
    ]);
  });

  it('records an allow as an allow (the request observation and the record)', async () => {
    const { audit, access, catalog } = setup();
    const session = sessionOf('ana');
    const decided = access.decide(session, catalog.current.get('alpha')!);
    const observation = await observeRequest('req-2', async () => {
      await access.record(session, decided, {});
      return currentRequest()!;
    });
    expect(observation.decision).toBe('allow');
    expect(audit.entries[0]!.data).toMatchObject({ effect: 'allow', requestId: 'req-2' });
  });

  it('audits the end of a completion under its decision, and a request for an unknown model as a deny', async () => {
    const { audit, access, catalog } = setup();
    const session = sessionOf('ana');
    await access.recordCompletion(session, {
      decisionId: 'dec_9',
      requestId: 'req-9',
      model: 'alpha',
      outcome: 'cut',
      finishReasons: ['stop'],
    });
    await observeRequest('req-3', () =>
      access.recordUnknownModel(session, 'nope', { endpoint: 'chat.completions', requestId: 'req-3' }),
    );
    expect(audit.entries).toEqual([
      {
        kind: 'completion',
        subject: 'ana',
        data: {
          decisionId: 'dec_9',
          requestId: 'req-9',
          model: 'alpha',
          outcome: 'cut',
          finishReasons: ['stop'],
          sessionId: 'session-ana',
        },
      },
      {
        kind: 'access',
        subject: 'ana',
        data: {
          endpoint: 'chat.completions',
          requestId: 'req-3',
          user: 'ana',
          username: 'ana@example.test',
          sessionId: 'session-ana',
          deviceId: 'device-ana',
          jkt: 'jkt-ana',
          model: 'nope',
          effect: 'deny',
          policy: 'model-not-found',
          catalogRevision: catalog.current.revision,
        },
      },
    ]);
  });

  it('reports a denied decision as the 403 access-denied problem with its reason, rule and decision id', () => {
    const { engine, access, catalog } = setup();
    engine.rule = () => denyExport;
    const denied = access.decide(sessionOf('ana'), catalog.current.get('alpha')!);
    expect(access.deniedProblem(denied, 'dec_5')).toEqual({
      type: 'urn:clearance:problem:access-denied',
      title: 'Restricted by export-control directive',
      status: 403,
      detail: 'Model alpha needs a US person.',
      instance: '/v1/models/alpha',
      reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
      policy: 'ec-us',
      decisionId: 'dec_5',
      message: 'Model alpha needs a US person.',
    });
  });
});

describe('entitlement content', () => {
  it('lists each model as allowed, denied with its rules, or hidden, and versions it by the hash of device and models', async () => {
    const catalog = catalogOf(
      modelOf('alpha', { description: 'The first', demo: true }),
      modelOf('beta', { since: '2026-01-01T00:00:00Z' }),
      modelOf('gamma', { visibility: 'hidden-when-denied' }),
      modelOf('delta', { since: '2026-02-01T00:00:00Z' }),
    );
    const { engine, versions, access } = setup(catalog);
    engine.policies = [exportPolicy];
    engine.rule = ({ model }) =>
      model.id === 'alpha'
        ? { effect: 'allow' }
        : model.id === 'delta'
          ? { effect: 'deny', reason: 'NOT_ENTITLED', policy: 'default-deny', determining: [] }
          : denyExport;
    const session = sessionOf('ana');
    const content = await access.entitlements(session);
    const models = [
      { id: 'alpha', name: 'Model alpha', description: 'The first', demo: true, status: 'allowed' },
      {
        id: 'beta',
        name: 'Model beta',
        status: 'denied',
        reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
        title: 'Restricted by export-control directive',
        message: 'Model beta needs a US person.',
        policy: 'ec-us',
        // The rule's own date, not the catalog's.
        since: '2026-06-01',
        rules: [
          {
            policy: 'ec-us',
            reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
            title: 'US persons only',
            message: 'Model beta needs a US person.',
            since: '2026-06-01',
          },
        ],
      },
      { id: 'gamma', name: 'Model gamma', status: 'hidden' },
      // No rule blocks it (nothing permits): no date at all, although the catalog has one.
      {
        id: 'delta',
        name: 'Model delta',
        status: 'denied',
        reason: 'NOT_ENTITLED',
        title: 'Not entitled',
        message: 'No policy grants you access to Model delta.',
        policy: 'default-deny',
      },
    ];
    const device = { id: 'device-ana', assurance: 'software', compliant: true };
    expect(content).toEqual({
      aud: 'clearance-desktop',
      sub: 'ana',
      cnf: { jkt: 'jkt-ana' },
      device,
      models,
      ver: 1,
    });
    expect(Object.keys(content.models[3]!)).not.toContain('since');
    expect(Object.keys(content.models[3]!)).not.toContain('rules');
    expect(Object.keys(content.models[0]!)).not.toContain('rules');
    const { ver: _ver, ...unversioned } = content;
    expect(versions.writes).toEqual([
      { userId: 'ana', fingerprint: sha256(JSON.stringify({ device, models: unversioned.models })) },
    ]);
    // Same content: same ver; a changed device verdict: a higher one.
    expect((await access.entitlements(session)).ver).toBe(1);
    expect((await access.entitlements({ ...session, device: { ...session.device, compliant: false } })).ver).toBe(2);
  });

  it("dates a denied model by the determining rule's own date, not by the most actionable rule listed first", async () => {
    const { engine, access } = setup(catalogOf(modelOf('alpha')));
    const rule = (id: string, reason: string, since: string): PolicyInfo => ({
      id,
      effect: 'forbid',
      file: `${id}.cedar`,
      text: '',
      annotations: { reason, since },
    });
    engine.policies = [
      rule('suspended', 'MODEL_SUSPENDED', '2026-07-01'),
      rule('device', 'DEVICE_NOT_COMPLIANT', '2026-03-01'),
    ];
    // A suspension determines the decision; the device rule is listed first (it is what the person can act on).
    engine.rule = () => ({
      effect: 'deny',
      reason: 'MODEL_SUSPENDED',
      policy: 'suspended',
      determining: ['suspended', 'device'],
    });
    const [entry] = (await access.entitlements(sessionOf('ana'))).models;
    expect(entry!.rules!.map((blocking) => blocking.policy)).toEqual(['device', 'suspended']);
    expect(entry!.since).toBe('2026-07-01');
  });

  it('leaves out description and demo when the catalog gives none', async () => {
    const { access } = setup(catalogOf(modelOf('alpha', { description: '' })));
    const content = await access.entitlements(sessionOf('ana'));
    expect(content.models).toEqual([{ id: 'alpha', name: 'Model alpha', status: 'allowed' }]);
    expect(Object.keys(content.models[0]!)).toEqual(['id', 'name', 'status']);
  });
});

describe('running completions', () => {
  it('are counted while registered and forgotten once disposed', () => {
    const { access } = setup();
    const one = access.startCompletion(inFlight(sessionOf('ana'), 'alpha').completion);
    const two = access.startCompletion(inFlight(sessionOf('bob'), 'alpha').completion);
    expect(access.inFlightCount).toBe(2);
    one.dispose();
    expect(access.inFlightCount).toBe(1);
    two.dispose();
    expect(access.inFlightCount).toBe(0);
  });

  it('a policy change cuts the denied ones with their 403 (audited with the trigger) and leaves the allowed running', async () => {
    const { engine, audit, logs, access } = setup(catalogOf(modelOf('alpha'), modelOf('beta')));
    const allowed = inFlight(sessionOf('ana'), 'alpha');
    const denied = inFlight(sessionOf('bob'), 'beta');
    access.startCompletion(allowed.completion);
    access.startCompletion(denied.completion);
    engine.rule = ({ model }) => (model.id === 'beta' ? denyExport : { effect: 'allow' });
    const result = await access.applyChange('policy revision 2');
    expect(result).toEqual({ cut: 1, notified: 0, recomputed: 0 });
    expect(allowed.cuts).toEqual([]);
    expect(denied.cuts).toEqual([
      {
        type: 'urn:clearance:problem:access-denied',
        title: 'Restricted by export-control directive',
        status: 403,
        detail: 'Model beta needs a US person.',
        instance: '/v1/models/beta',
        reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
        policy: 'ec-us',
        decisionId: 'dec_1',
        message: 'Model beta needs a US person.',
      },
    ]);
    expect(audit.entries).toHaveLength(1);
    expect(audit.entries[0]).toMatchObject({
      kind: 'access',
      subject: 'bob',
      data: { endpoint: 'chat.completions', trigger: 'policy revision 2', model: 'beta', effect: 'deny' },
    });
    expect(access.inFlightCount).toBe(1);
    expect(logs).toEqual(['policy revision 2: cut 1 completion(s), notified 0 user(s)']);
    // Cut once: a second change does not cut it again.
    expect(await access.applyChange('again')).toEqual({ cut: 0, notified: 0, recomputed: 0 });
    expect(denied.cuts).toHaveLength(1);
    expect(logs).toHaveLength(1);
  });

  it('a catalog change cuts completions of a withdrawn model with a 404, without auditing a decision', async () => {
    const { audit, access, catalog } = setup(catalogOf(modelOf('alpha'), modelOf('beta')));
    const running = inFlight(sessionOf('ana'), 'beta');
    access.startCompletion(running.completion);
    catalog.current = catalogOf(modelOf('alpha'));
    expect(await access.applyChange('catalog 2')).toEqual({ cut: 1, notified: 0, recomputed: 0 });
    expect(running.cuts).toEqual([
      {
        type: 'urn:clearance:problem:model-not-found',
        title: 'Model withdrawn',
        status: 404,
        detail: 'Model beta is no longer in the catalog.',
      },
    ]);
    expect(audit.entries).toEqual([]);
    expect(access.inFlightCount).toBe(0);
  });

  it('a completion whose cut throws is logged and the others are still cut', async () => {
    const { engine, logs, access } = setup();
    engine.rule = () => denyExport;
    access.startCompletion({
      session: sessionOf('ana'),
      modelId: 'alpha',
      cut: () => {
        throw new Error('socket gone');
      },
    });
    const other = inFlight(sessionOf('bob'), 'alpha');
    access.startCompletion(other.completion);
    expect(await access.applyChange('t')).toMatchObject({ cut: 2 });
    expect(other.cuts).toHaveLength(1);
    expect(logs).toEqual(['cutting a completion failed: socket gone', 't: cut 2 completion(s), notified 0 user(s)']);
    expect(access.inFlightCount).toBe(0);
  });
});

describe('suspending a user and revoking a device', () => {
  it('endUser cuts every completion of the user on every device, forgets their sessions and tells their streams', async () => {
    const { access, events, versions } = setup();
    const laptop = sessionOf('ana');
    const desktop = sessionOf('ana', { jkt: 'jkt-ana-2', sessionId: 's2' });
    const bystander = sessionOf('bob');
    for (const session of [laptop, desktop, bystander]) access.track(session);
    const one = inFlight(laptop, 'alpha');
    const two = inFlight(desktop, 'alpha');
    const other = inFlight(bystander, 'alpha');
    for (const running of [one, two, other]) access.startCompletion(running.completion);
    const heard = listen(events, desktop);
    const problem: ProblemDetails = {
      type: 'urn:clearance:problem:account-suspended',
      title: 'Account suspended',
      status: 403,
      detail: 'IT suspended the account.',
    };
    expect(access.endUser('ana', problem, 'account_suspended')).toBe(2);
    expect(one.cuts).toEqual([problem]);
    expect(two.cuts).toEqual([problem]);
    expect(other.cuts).toEqual([]);
    expect(access.inFlightCount).toBe(1);
    expect(heard).toEqual([
      { event: 'session.revoked', data: { reason: 'account_suspended', detail: 'IT suspended the account.' } },
    ]);
    // Their sessions are forgotten (a stream opened again is not recomputed); others' are kept.
    listen(events, laptop);
    listen(events, bystander);
    expect(await access.applyChange('t')).toEqual({ cut: 0, notified: 1, recomputed: 1 });
    expect(versions.writes.map((write) => write.userId)).toEqual(['bob']);
  });

  it('endUser tells the stream the title when the problem has no detail', () => {
    const { access, events } = setup();
    const heard = listen(events, sessionOf('ana'));
    const problem = { type: 'urn:clearance:problem:account-suspended', title: 'Account suspended', status: 403 };
    expect(access.endUser('ana', problem, 'why')).toBe(0);
    expect(heard).toEqual([{ event: 'session.revoked', data: { reason: 'why', detail: 'Account suspended' } }]);
  });

  it('revokeDevice cuts only that device key of that user with the session-revoked 401', async () => {
    const { access, events, versions } = setup();
    const victim = sessionOf('ana');
    const sameUserOtherKey = sessionOf('ana', {
      jkt: 'jkt-ana-2',
      sessionId: 's2',
      device: { id: 'device-ana-2', assurance: 'software', compliant: true, failedChecks: [] },
    });
    const otherUserSameKey = sessionOf('bob', { jkt: 'jkt-ana' });
    for (const session of [victim, sameUserOtherKey, otherUserSameKey]) access.track(session);
    const cut = inFlight(victim, 'alpha');
    const kept = [inFlight(sameUserOtherKey, 'alpha'), inFlight(otherUserSameKey, 'alpha')];
    for (const running of [cut, ...kept]) access.startCompletion(running.completion);
    const victimHeard = listen(events, victim);
    const otherDeviceHeard = listen(events, sameUserOtherKey);
    expect(access.revokeDevice('ana', 'jkt-ana', 'The device key was revoked by IT.')).toBe(1);
    expect(cut.cuts).toEqual([
      {
        type: 'urn:clearance:problem:session-revoked',
        title: 'Session revoked',
        status: 401,
        detail: 'The device key was revoked by IT.',
        error: {
          message: 'The device key was revoked by IT.',
          type: 'authentication_error',
          code: 'invalid_token',
          param: null,
        },
      },
    ]);
    for (const running of kept) expect(running.cuts).toEqual([]);
    expect(access.inFlightCount).toBe(2);
    expect(victimHeard).toEqual([
      { event: 'session.revoked', data: { reason: 'device_revoked', detail: 'The device key was revoked by IT.' } },
    ]);
    expect(otherDeviceHeard).toEqual([]);
    // The revoked key's session is forgotten; the user's other key is still recomputed.
    listen(events, victim);
    expect(await access.applyChange('t')).toMatchObject({ recomputed: 1 });
    expect(versions.writes).toHaveLength(1);
    const [stored] = versions.writes;
    expect(stored!.userId).toBe('ana');
    expect(await access.entitlements(sameUserOtherKey)).toMatchObject({ ver: 1, cnf: { jkt: 'jkt-ana-2' } });
    expect(versions.writes.at(-1)!.fingerprint).toBe(stored!.fingerprint);
  });
});

describe('the fan-out to subscribed users', () => {
  it('recomputes each user with an open stream once per distinct device state and notifies those whose ver rose', async () => {
    const { engine, access, events, versions, logs } = setup();
    const laptop = sessionOf('ana');
    const desktop = sessionOf('ana', { jkt: 'jkt-ana-2', sessionId: 's2' });
    const failing = sessionOf('ana', {
      jkt: 'jkt-ana-3',
      sessionId: 's3',
      device: { id: 'd3', assurance: 'software', compliant: false, failedChecks: ['firewall'] },
    });
    const quiet = sessionOf('quiet');
    for (const session of [laptop, desktop, failing, quiet]) access.track(session);
    const heard = [laptop, desktop, failing].map((session) => listen(events, session));
    const result = await access.applyChange('policy 2');
    expect(result).toEqual({ cut: 0, notified: 1, recomputed: 1 });
    // Two distinct states (laptop and desktop alike, the failing device apart): two fingerprints stored.
    expect(versions.writes.map((write) => write.userId)).toEqual(['ana', 'ana']);
    expect(new Set(versions.writes.map((write) => write.fingerprint)).size).toBe(2);
    const ver = versions.rows.get('ana')!.ver;
    expect(ver).toBe(2);
    for (const stream of heard) expect(stream).toEqual([{ event: 'entitlements.changed', data: { ver: 2 } }]);
    expect(logs).toEqual(['policy 2: cut 0 completion(s), notified 1 user(s)']);
    // The user without a stream was not asked about.
    expect(engine.calls.some((call) => call.userId === 'quiet')).toBe(false);
  });

  it('a user whose ver did not rise is not notified', async () => {
    const { access, events, logs } = setup();
    const session = sessionOf('ana');
    access.track(session);
    await access.entitlements(session);
    const heard = listen(events, session);
    expect(await access.applyChange('t')).toEqual({ cut: 0, notified: 0, recomputed: 1 });
    expect(heard).toEqual([]);
    // Nothing cut, nobody notified: nothing logged.
    expect(logs).toEqual([]);
  });

  it('skips a subscribed user with no tracked or only an expired session', async () => {
    const { access, events, versions } = setup();
    listen(events, sessionOf('untracked'));
    const expired = sessionOf('expired', { expiresAt: Math.floor(Date.now() / 1000) - 5 });
    access.track(expired);
    listen(events, expired);
    expect(await access.applyChange('t')).toEqual({ cut: 0, notified: 0, recomputed: 0 });
    expect(versions.writes).toEqual([]);
  });

  it('uses the newest session of a device key: a later token replaces it, an older one does not', async () => {
    vi.useFakeTimers({ now: 1_000_000_000_000, toFake: ['Date'] });
    const { engine, access, events } = setup();
    const now = 1_000_000_000;
    const first = sessionOf('ana', {
      expiresAt: now + 100,
      principal: { groups: ['a'], usPerson: false, verificationPending: false },
    });
    const same = sessionOf('ana', {
      expiresAt: now + 100,
      principal: { groups: ['b'], usPerson: false, verificationPending: false },
    });
    const older = sessionOf('ana', {
      expiresAt: now + 50,
      principal: { groups: ['c'], usPerson: false, verificationPending: false },
    });
    access.track(first);
    access.track(same);
    access.track(older);
    listen(events, first);
    await access.applyChange('t');
    expect(engine.calls.map((call) => call.principal.groups)).toEqual([['b']]);
    // A session expiring exactly now is still live; one a second earlier is not.
    engine.calls.length = 0;
    const atNow = sessionOf('bob', { expiresAt: now });
    access.track(atNow);
    listen(events, atNow);
    await access.applyChange('t');
    expect(engine.calls.map((call) => call.userId).sort()).toEqual(['ana', 'bob']);
  });

  it('evaluates users who look alike to the policies once, and users who differ apart', async () => {
    const { engine, access, events, versions } = setup();
    const base = sessionOf('u0');
    const variants: ActiveSession[] = [
      base,
      sessionOf('u1'),
      sessionOf('u2', { principal: { ...base.principal, groups: ['other'] } }),
      sessionOf('u3', { device: { ...base.device, assurance: 'hardware' } }),
      sessionOf('u4', { device: { ...base.device, compliant: false } }),
      sessionOf('u5', { device: { ...base.device, failedChecks: ['firewall'] } }),
    ];
    engine.rule = ({ principal, device }) =>
      principal.groups.includes('other') ||
      device.assurance === 'hardware' ||
      !device.compliant ||
      device.failedChecks.length > 0
        ? denyExport
        : { effect: 'allow' };
    engine.policies = [exportPolicy];
    for (const session of variants) {
      access.track(session);
      listen(events, session);
    }
    expect(await access.applyChange('t')).toMatchObject({ recomputed: 6, notified: 6 });
    // u0 and u1 share one evaluation (one model each): five evaluations for six users.
    expect(engine.calls.map((call) => call.userId)).toEqual(['u0', 'u2', 'u3', 'u4', 'u5']);
    // What the fan-out stored is what each user's own request computes.
    const stored = new Map(versions.writes.map((write) => [write.userId, write.fingerprint]));
    versions.writes.length = 0;
    for (const session of variants) {
      const content = await access.entitlements(session);
      expect(content.ver).toBe(1);
      expect(versions.writes.at(-1)!.fingerprint).toBe(stored.get(session.userId));
    }
  });

  it('keeps users apart by id when a policy names users', async () => {
    const { engine, access, events, versions } = setup();
    engine.namesUsers = true;
    engine.policies = [exportPolicy];
    engine.rule = ({ userId }) => (userId === 'u1' ? denyExport : { effect: 'allow' });
    for (const session of [sessionOf('u0'), sessionOf('u1')]) {
      access.track(session);
      listen(events, session);
    }
    await access.applyChange('t');
    expect(engine.calls.map((call) => call.userId)).toEqual(['u0', 'u1']);
    const stored = new Map(versions.writes.map((write) => [write.userId, write.fingerprint]));
    await access.entitlements(sessionOf('u1'));
    expect(versions.writes.at(-1)!.fingerprint).toBe(stored.get('u1'));
  });

  it('does not reuse a model list across a policy or catalog reload that lands during the fan-out', async () => {
    for (const change of ['policy', 'catalog'] as const) {
      const { engine, access, events, versions, catalog } = setup(catalogOf(modelOf('alpha')), 0);
      engine.policies = [exportPolicy];
      const users = [sessionOf('u0'), sessionOf('u1')];
      for (const session of users) {
        access.track(session);
        listen(events, session);
      }
      let reloaded = false;
      engine.rule = () => (reloaded ? denyExport : { effect: 'allow' });
      versions.later = true;
      const write = versions.versionFor.bind(versions);
      versions.versionFor = async (userId, fingerprint) => {
        // The reload lands while the first user's version is being stored.
        if (!reloaded) {
          reloaded = true;
          if (change === 'policy') engine.revision = 2;
          else catalog.current = catalogOf(modelOf('alpha', { name: 'Alpha renamed' }));
        }
        return write(userId, fingerprint);
      };
      await access.applyChange(change);
      const stored = new Map(versions.writes.map((entry) => [entry.userId, entry.fingerprint]));
      expect(stored.get('u0')).not.toBe(stored.get('u1'));
      await access.entitlements(users[1]!);
      expect(versions.writes.at(-1)!.fingerprint).toBe(stored.get('u1'));
    }
  });

  it('notifies everyone it could recompute when the store fails for one user, then reports the failure', async () => {
    const { access, events, versions, logs } = setup();
    versions.failFor.add('u1');
    const heard = ['u0', 'u1', 'u2'].map((id) => {
      const session = sessionOf(id);
      access.track(session);
      return listen(events, session);
    });
    const failure = await access.applyChange('t').then(
      () => undefined,
      (error: unknown) => error as Error,
    );
    expect(failure?.message).toBe('1 user(s) could not be recomputed: disk full for u1');
    expect((failure?.cause as Error).message).toBe('disk full for u1');
    expect(heard.map((stream) => stream.length)).toEqual([1, 0, 1]);
    expect(logs).toEqual(['t: cut 0 completion(s), notified 2 user(s)']);
  });

  it('reports a user whose content cannot be computed as a failure too, after notifying the others', async () => {
    const { engine, access, events } = setup();
    engine.rule = ({ userId }) => {
      if (userId === 'u0') throw new Error('policy evaluation failed');
      return { effect: 'allow' };
    };
    const heard = ['u0', 'u1'].map((id) => {
      const session = sessionOf(id, { principal: { groups: [id], usPerson: false, verificationPending: false } });
      access.track(session);
      return listen(events, session);
    });
    await expect(access.applyChange('t')).rejects.toThrow(
      '1 user(s) could not be recomputed: policy evaluation failed',
    );
    expect(heard.map((stream) => stream.length)).toEqual([0, 1]);
  });

  it('counts every failed user and names the first', async () => {
    const { access, events, versions } = setup();
    versions.failFor.add('u0');
    versions.failFor.add('u1');
    for (const id of ['u0', 'u1', 'u2']) {
      const session = sessionOf(id);
      access.track(session);
      listen(events, session);
    }
    await expect(access.applyChange('t')).rejects.toThrow(/^2 user\(s\) could not be recomputed: disk full for u0$/);
  });
});

describe('fan-out slices', () => {
  /** Counts turns of the event loop while `body` runs. */
  async function countingTurns<T>(body: (turn: () => number) => Promise<T>): Promise<T> {
    let turn = 0;
    let counting = true;
    const count = () => {
      turn++;
      if (counting) setImmediate(count);
    };
    setImmediate(count);
    try {
      return await body(() => turn);
    } finally {
      counting = false;
    }
  }

  function subscribers(count: number, state: Setup, onWrite: () => void = () => {}) {
    for (let index = 0; index < count; index++) {
      // Each user a distinct principal, so each is evaluated.
      const session = sessionOf(`u${index}`, {
        principal: { groups: [`g${index}`], usPerson: false, verificationPending: false },
      });
      state.access.track(session);
      state.events.subscribe(session.userId, session.jkt, { write: onWrite, close: () => {} });
    }
  }

  /** How many of the events happened in each turn, in order. */
  function slices(turns: readonly number[]): number[] {
    const sizes: number[] = [];
    for (const [index, turn] of turns.entries()) {
      if (index > 0 && turn === turns[index - 1]) sizes[sizes.length - 1]!++;
      else sizes.push(1);
    }
    return sizes;
  }

  it('has a small default budget', () => {
    expect(FANOUT_SLICE_MS).toBe(2);
  });

  it('with a zero budget computes and notifies each user in a turn of the event loop of its own', async () => {
    const state = setup(catalogOf(modelOf('alpha')), 0);
    state.versions.later = true;
    const notifiedAt: number[] = [];
    let now = () => 0;
    subscribers(6, state, () => notifiedAt.push(now()));
    const computedAt: number[] = [];
    const result = await countingTurns(async (turn) => {
      now = turn;
      state.engine.after = () => computedAt.push(turn());
      const start = turn();
      const applied = await state.access.applyChange('t');
      expect(computedAt[0]).toBeGreaterThan(start);
      // The last notification's writes count in a slice too: the fan-out ends on a later turn.
      expect(turn()).toBeGreaterThan(notifiedAt.at(-1)!);
      return applied;
    });
    expect(result).toEqual({ cut: 0, notified: 6, recomputed: 6 });
    expect(new Set(computedAt).size).toBe(6);
    expect(new Set(notifiedAt).size).toBe(6);
    // One version write in flight at a time: the next slice waits for the previous one's.
    expect(state.versions.most).toBe(1);
  });

  it('keeps users in one slice while its budget lasts, then starts a new one', async () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    const state = setup(catalogOf(modelOf('alpha')), 10);
    state.versions.later = true;
    subscribers(6, state);
    const computedAt: number[] = [];
    await countingTurns(async (turn) => {
      state.engine.after = () => {
        computedAt.push(turn());
        // Each evaluation costs 5 ms.
        vi.advanceTimersByTime(5);
      };
      await state.access.applyChange('t');
    });
    // Two users a slice: at 10 ms the budget is spent, and the next slice starts over.
    expect(slices(computedAt)).toEqual([2, 2, 2]);
  });

  it('notifies in slices too: a slice that spent its budget yields before the next notification', async () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    const state = setup(catalogOf(modelOf('alpha')), 10);
    const notifiedAt: number[] = [];
    let turnOf = () => 0;
    subscribers(6, state, () => {
      notifiedAt.push(turnOf());
      // Each socket write costs 5 ms.
      vi.advanceTimersByTime(5);
    });
    await countingTurns(async (turn) => {
      turnOf = turn;
      await state.access.applyChange('t');
    });
    expect(slices(notifiedAt)).toEqual([2, 2, 2]);
  });

  it('with time to spare runs the whole fan-out without yielding', async () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    const state = setup(catalogOf(modelOf('alpha')), 10);
    const notifiedAt: number[] = [];
    let turnOf = () => 0;
    subscribers(4, state, () => notifiedAt.push(turnOf()));
    const computedAt: number[] = [];
    await countingTurns(async (turn) => {
      turnOf = turn;
      state.engine.after = () => computedAt.push(turn());
      await state.access.applyChange('t');
    });
    expect(new Set(computedAt).size).toBe(1);
    expect(new Set(notifiedAt).size).toBe(1);
    expect(notifiedAt[0]).toBe(computedAt[0]);
  });
});

describe('tracked sessions', () => {
  it('are swept of expired tokens once more than 1,000 are tracked, and the next sweep waits for twice as many', () => {
    vi.useFakeTimers({ now: 1_000_000_000_000, toFake: ['Date'] });
    const { access } = setup();
    const tracked = (access as unknown as { sessions: Map<string, ActiveSession> }).sessions;
    const now = 1_000_000_000;
    // 600 live (one expiring exactly now), 400 expired a second ago.
    for (let index = 0; index < 1000; index++) {
      access.track(sessionOf(`u${index}`, { expiresAt: index < 600 ? now + (index === 0 ? 0 : 60) : now - 1 }));
    }
    expect(tracked.size).toBe(1000);
    access.track(sessionOf('u1000', { expiresAt: now + 60 }));
    expect(tracked.size).toBe(601);
    expect(tracked.has('u0\njkt-u0')).toBe(true);
    // The next sweep comes at max(1000, 2 × 601) = 1202 sessions.
    for (let index = 1001; index < 1202; index++) access.track(sessionOf(`u${index}`, { expiresAt: now - 1 }));
    expect(tracked.size).toBe(802);
    // Still no sweep at 1202; one at 1203.
    for (let index = 1202; index < 1602; index++) access.track(sessionOf(`u${index}`, { expiresAt: now - 1 }));
    expect(tracked.size).toBe(1202);
    access.track(sessionOf('u-last', { expiresAt: now + 60 }));
    expect(tracked.size).toBe(602);
  });

  it('never sweeps more often than every 1,000 sessions', () => {
    vi.useFakeTimers({ now: 1_000_000_000_000, toFake: ['Date'] });
    const { access } = setup();
    const tracked = (access as unknown as { sessions: Map<string, ActiveSession> }).sessions;
    const now = 1_000_000_000;
    for (let index = 0; index < 1001; index++) access.track(sessionOf(`u${index}`, { expiresAt: now - 1 }));
    // All expired: swept to none, and the next sweep is at 1000 again, not at 0.
    expect(tracked.size).toBe(0);
    for (let index = 0; index < 1000; index++) access.track(sessionOf(`v${index}`, { expiresAt: now - 1 }));
    expect(tracked.size).toBe(1000);
  });
});
