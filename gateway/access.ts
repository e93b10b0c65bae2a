import { createHash } from 'node:crypto';
import type { EntitlementDocument, ModelEntitlement } from '../shared/entitlements';
import type { ProblemDetails } from '../shared/problem';
import type { Catalog, CatalogModel } from './catalog';
import type { ClaimMapping } from './auth/identity-token';
import type { EventHub } from './events/hub';
import { blockingRules } from './blocking-rules';
import { accessDeniedProblem } from './http/problems';
import { describeDecision, type ModelOutcome } from './policy/describe';
import type { DevicePolicyState, PolicyDecision, PolicyEngine, PrincipalAttributes } from './policy/engine';
import type { AuditLog, AuditRecord } from './store/audit-log';
import { currentRequest, recordDecision, timePhaseAsync } from './observability/context';
import type { EntitlementVersions } from './store/entitlement-versions';

/** A signed-in user on one attested device, as the gateway knows them from their access token. */
export interface ActiveSession {
  readonly sessionId: string;
  readonly userId: string;
  /** Thumbprint of the device key the session is bound to. */
  readonly jkt: string;
  readonly identity: { readonly name?: string; readonly username?: string; readonly groups: readonly string[] };
  readonly principal: PrincipalAttributes;
  readonly device: DevicePolicyState & { readonly id: string };
  /** Unix seconds at which the access token expires. */
  readonly expiresAt: number;
}

/** A completion that is running; cut when a policy change denies it. */
export interface InFlightCompletion {
  readonly session: ActiveSession;
  readonly modelId: string;
  /** Ends the completion with `problem`; must return quickly. */
  cut(problem: ProblemDetails): void;
}

/** How an allowed completion ended, for its audit record. */
export interface CompletionRecord {
  readonly decisionId: string;
  readonly requestId: string;
  readonly model: string;
  readonly outcome: 'complete' | 'cut' | 'upstream-error' | 'client-closed';
  readonly finishReasons: readonly string[];
  readonly usage?: {
    readonly prompt_tokens: number;
    readonly completion_tokens: number;
    readonly total_tokens: number;
  };
}

/** A decision with the text the user sees. */
export interface ModelAccess {
  readonly model: CatalogModel;
  readonly decision: PolicyDecision;
  readonly outcome: ModelOutcome;
}

/** The entitlement document's claims before `iss`, `iat`, `exp` and the signature. */
export type EntitlementContent = Omit<EntitlementDocument, 'iss' | 'iat' | 'exp'>;

/** Maps identity-token groups to Cedar principal attributes. */
export function principalFromGroups(groups: readonly string[], mapping: ClaimMapping): PrincipalAttributes {
  return {
    groups: [...groups],
    usPerson: groups.includes(mapping.usPersonGroup),
    verificationPending: groups.includes(mapping.verificationPendingGroup),
  };
}

/**
 * How long one slice of a fan-out may hold the event loop before yielding, socket writes and
 * store work included. Small, because a request waiting behind the fan-out needs several
 * turns of the loop (parse, auth, audit commit, upstream, reply) and waits up to one slice in each.
 */
export const FANOUT_SLICE_MS = 2;

/**
 * Live access decisions for sessions: decide, audit, build entitlement content, and react
 * to policy or catalog changes by pushing `entitlements.changed` and cutting denied streams.
 */
export class AccessService {
  /** The newest session of each device key (`userId` and `jkt`), until its token expires. */
  private readonly sessions = new Map<string, ActiveSession>();
  private readonly inFlight = new Set<InFlightCompletion>();
  private nextSweepAt = 1000;

  constructor(
    private readonly engine: PolicyEngine,
    private readonly catalog: () => Catalog,
    private readonly audit: AuditLog,
    private readonly versions: EntitlementVersions,
    private readonly events: EventHub,
    private readonly log: (line: string) => void,
    /** Time budget of one fan-out slice, in milliseconds. */
    private readonly sliceMs = FANOUT_SLICE_MS,
  ) {}

  /** Remembers a session so policy changes reach it (while it has an open event stream) until its token expires. */
  track(session: ActiveSession): void {
    const key = deviceKey(session.userId, session.jkt);
    const known = this.sessions.get(key);
    if (!known || session.expiresAt >= known.expiresAt) this.sessions.set(key, session);
    if (this.sessions.size > this.nextSweepAt) {
      const now = Date.now() / 1000;
      for (const [id, tracked] of this.sessions) if (tracked.expiresAt < now) this.sessions.delete(id);
      this.nextSweepAt = Math.max(1000, this.sessions.size * 2);
    }
  }

  /** Decides one model for a session (cached by the engine). */
  decide(session: ActiveSession, model: CatalogModel): ModelAccess {
    const decision = this.engine.decide({
      userId: session.userId,
      principal: session.principal,
      device: session.device,
      model,
    });
    return { model, decision, outcome: describeDecision(decision, model, session.device) };
  }

  /** Appends the audit record of one access decision. */
  async record(session: ActiveSession, access: ModelAccess, context: Record<string, unknown>): Promise<AuditRecord> {
    recordDecision(access.decision.effect);
    return timePhaseAsync('audit', () => this.appendAccess(session, access, context));
  }

  private appendAccess(
    session: ActiveSession,
    access: ModelAccess,
    context: Record<string, unknown>,
  ): Promise<AuditRecord> {
    return this.audit.append({
      kind: 'access',
      subject: session.userId,
      data: {
        ...context,
        ...sessionFields(session),
        model: access.model.id,
        effect: access.decision.effect,
        reason: access.decision.reason,
        policy: access.decision.policy,
        determining: access.decision.determining,
        errors: access.decision.errors,
        policyRevision: access.decision.policyRevision,
        catalogRevision: this.catalog().revision,
      },
    });
  }

  /**
   * Appends how an allowed completion ended, under the decision's id: its usage (token counts)
   * and finish reasons. The chain is append-only, so this is a second record naming the decision.
   */
  async recordCompletion(session: ActiveSession, completion: CompletionRecord): Promise<AuditRecord> {
    return this.audit.append({
      kind: 'completion',
      subject: session.userId,
      data: { ...completion, sessionId: session.sessionId },
    });
  }

  /** Appends the audit record of a request for a model the catalog does not have. */
  async recordUnknownModel(
    session: ActiveSession,
    modelId: string,
    context: Record<string, unknown>,
  ): Promise<AuditRecord> {
    return this.audit.append({
      kind: 'access',
      subject: session.userId,
      data: {
        ...context,
        ...sessionFields(session),
        model: modelId,
        effect: 'deny',
        policy: 'model-not-found',
        catalogRevision: this.catalog().revision,
      },
    });
  }

  /** The problem a denied decision is reported with. */
  deniedProblem(access: ModelAccess, decisionId: string): ProblemDetails {
    return accessDeniedProblem(access.model, access.outcome, decisionId);
  }

  /** Builds the user's entitlement content and its `ver` (raised if the content changed). */
  async entitlements(session: ActiveSession): Promise<EntitlementContent> {
    const { content, fingerprint } = this.content(session);
    const ver = await this.versions.versionFor(session.userId, fingerprint);
    return { ...content, ver };
  }

  /**
   * The entitlement content without `ver`, and the fingerprint `ver` follows; synchronous.
   *
   * `models`, when given, keeps the model list of each distinct principal and device state
   * (what the decisions depend on) for one fan-out, so a thousand users who look alike to the
   * policies cost one evaluation; the fingerprint is the same as without it.
   */
  private content(
    session: ActiveSession,
    models?: Map<string, ModelsPart>,
  ): { content: Omit<EntitlementContent, 'ver'>; fingerprint: string } {
    let part: ModelsPart | undefined;
    let key: string | undefined;
    if (models) {
      const { assurance, compliant, failedChecks } = session.device;
      key = JSON.stringify([
        this.engine.revision,
        this.catalog().revision,
        this.engine.namesUsers ? session.userId : null,
        session.principal,
        assurance,
        compliant,
        failedChecks,
      ]);
      part = models.get(key);
    }
    if (!part) {
      const list = this.models(session);
      part = { list, json: JSON.stringify(list) };
      if (models && key !== undefined) models.set(key, part);
    }
    const device = { id: session.device.id, assurance: session.device.assurance, compliant: session.device.compliant };
    // The hash of `JSON.stringify({ device, models })`, byte for byte, fed in parts: the models'
    // JSON is neither serialized again nor copied into a new string for each user.
    const fingerprint = createHash('sha256')
      .update(`{"device":${JSON.stringify(device)},"models":`)
      .update(part.json)
      .update('}')
      .digest('hex');
    return {
      content: { aud: 'clearance-desktop', sub: session.userId, cnf: { jkt: session.jkt }, device, models: part.list },
      fingerprint,
    };
  }

  /** What each catalog model is for this session (allowed, denied and why, hidden). */
  private models(session: ActiveSession): ModelEntitlement[] {
    const policies = new Map(this.engine.policies.map((policy) => [policy.id, policy]));
    return this.catalog().models.map((model) => {
      const { outcome, decision } = this.decide(session, model);
      if (outcome.status === 'hidden') return { id: model.id, name: model.name, status: 'hidden' };
      const rules = blockingRules(decision, policies, model, session.device);
      // "In effect since" is the rule's own date, never the catalog's; absent when the rule states none.
      const { since: _described, ...rest } = outcome;
      const since = rules.find((rule) => rule.policy === decision.policy)?.since;
      return {
        id: model.id,
        name: model.name,
        ...(model.description ? { description: model.description } : {}),
        ...(model.demo ? { demo: true } : {}),
        ...rest,
        ...(since ? { since } : {}),
        ...(rules.length > 0 ? { rules } : {}),
      };
    });
  }

  /** Registers a running completion; dispose the result when it ends. */
  startCompletion(completion: InFlightCompletion): { dispose(): void } {
    this.inFlight.add(completion);
    return { dispose: () => this.inFlight.delete(completion) };
  }

  /** Running completions (for tests and diagnostics). */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /**
   * Applies a new policy or catalog to everyone connected.
   *
   * Denied completions are cut first (they are what must stop within a second). Then, for
   * users with an open event stream, once per user and distinct device state: the
   * entitlements are recomputed, the new `ver` stored, and `entitlements.changed` sent to each
   * user whose `ver` rose. A user without an open stream gets the new content on their next
   * request. All of it runs in slices of `sliceMs` that yield to the event loop, and a slice's
   * time counts everything it caused (the store's work, the socket writes of its events), so
   * requests arriving meanwhile wait at most one slice per turn of the loop.
   */
  async applyChange(trigger: string): Promise<{ cut: number; notified: number; recomputed: number }> {
    const cut = await this.cutDenied(trigger);
    const slices = new Slices(this.sliceMs);
    const models = new Map<string, ModelsPart>();
    const refreshes: Promise<{ userId: string; ver: number } | undefined>[] = [];
    // The versions a slice stored; the next slice starts once they are durable, so the fan-out
    // has one group commit (one fsync) in flight at a time and requests' audit commits do not
    // queue behind a burst of its fsyncs on the thread pool and the disk.
    let batch: Promise<unknown>[] = [];
    for (const userId of this.events.subscribedUsers()) {
      if (await slices.spent()) {
        if (batch.length > 0) await Promise.allSettled(batch);
        else await slices.yield();
        batch = [];
        slices.restart();
      }
      const sessions = this.subscribedSessions(userId);
      if (sessions.length === 0) continue;
      let refresh: Promise<{ userId: string; ver: number } | undefined>;
      try {
        const fingerprints = sessions.map((session) => this.content(session, models).fingerprint);
        refresh = this.raiseVersion(userId, fingerprints);
      } catch (error) {
        refresh = Promise.reject(error as Error);
      }
      // Handled below, after later slices; marked handled now so it is not an unhandled rejection.
      // Stryker disable next-line CallExpression: defensive today: every refresh gets its handler (the next slice's allSettled(batch) or the final allSettled) before the event loop turns, since only microtasks and nextTick callbacks run in between, and Node reports an unhandled rejection only once both queues are empty
      refresh.catch(() => {});
      refreshes.push(refresh);
      batch.push(refresh);
    }
    // Every new `ver` is durable before anyone is told of it.
    const settled = await Promise.allSettled(refreshes);
    let notified = 0;
    for (const entry of settled) {
      if (entry.status !== 'fulfilled' || entry.value === undefined) continue;
      await slices.next();
      this.events.publish(entry.value.userId, { type: 'entitlements.changed', data: { ver: entry.value.ver } });
      notified++;
    }
    await slices.next();
    if (cut > 0 || notified > 0) {
      this.log(`${trigger}: cut ${cut} completion(s), notified ${notified} user(s)`);
    }
    const failed = settled.filter((entry) => entry.status === 'rejected');
    if (failed.length > 0) {
      const first = (failed[0] as PromiseRejectedResult).reason as Error;
      throw new Error(`${failed.length} user(s) could not be recomputed: ${first.message}`, { cause: first });
    }
    return { cut, notified, recomputed: refreshes.length };
  }

  private async cutDenied(trigger: string): Promise<number> {
    let cut = 0;
    for (const completion of [...this.inFlight]) {
      const model = this.catalog().get(completion.modelId);
      const session = completion.session;
      const access: ModelAccess | undefined = model ? this.decide(session, model) : undefined;
      if (access && access.decision.effect === 'allow') continue;
      cut++;
      this.inFlight.delete(completion);
      let problem: ProblemDetails;
      if (access) {
        const record = await this.record(session, access, { endpoint: 'chat.completions', trigger });
        problem = this.deniedProblem(access, record.decisionId);
      } else {
        problem = {
          type: 'urn:clearance:problem:model-not-found',
          title: 'Model withdrawn',
          status: 404,
          detail: `Model ${completion.modelId} is no longer in the catalog.`,
        };
      }
      try {
        completion.cut(problem);
      } catch (error) {
        this.log(`cutting a completion failed: ${(error as Error).message}`);
      }
    }
    return cut;
  }

  /**
   * The sessions of a user with an open event stream to recompute: the newest live session of
   * each subscribed device key, one per distinct principal and device state.
   */
  private subscribedSessions(userId: string): ActiveSession[] {
    const now = Date.now() / 1000;
    const distinct = new Map<string, ActiveSession>();
    for (const jkt of this.events.devicesOf(userId)) {
      const session = this.sessions.get(deviceKey(userId, jkt));
      if (!session || session.expiresAt < now) continue;
      distinct.set(JSON.stringify([session.principal, session.device]), session);
    }
    return [...distinct.values()];
  }

  /** Stores the user's new `ver` for these fingerprints; the user and `ver` when it rose, once durable. */
  private async raiseVersion(
    userId: string,
    fingerprints: readonly string[],
  ): Promise<{ userId: string; ver: number } | undefined> {
    const before = await this.versions.current(userId);
    let ver = before;
    for (const fingerprint of fingerprints) ver = Math.max(ver, await this.versions.versionFor(userId, fingerprint));
    return ver > before ? { userId, ver } : undefined;
  }

  /** Ends every stream and completion of a user on all devices (an account suspension). */
  endUser(userId: string, cutWith: ProblemDetails, eventReason: string): number {
    let cut = 0;
    for (const completion of [...this.inFlight]) {
      if (completion.session.userId !== userId) continue;
      this.inFlight.delete(completion);
      cut++;
      completion.cut(cutWith);
    }
    for (const [key, session] of this.sessions) if (session.userId === userId) this.sessions.delete(key);
    const detail = cutWith.detail ?? cutWith.title;
    this.events.publish(userId, { type: 'session.revoked', data: { reason: eventReason, detail } });
    return cut;
  }

  /** Ends every stream and completion of one device key of a user. */
  revokeDevice(userId: string, jkt: string, detail: string): number {
    let cut = 0;
    for (const completion of [...this.inFlight]) {
      if (completion.session.userId !== userId || completion.session.jkt !== jkt) continue;
      this.inFlight.delete(completion);
      cut++;
      completion.cut({
        type: 'urn:clearance:problem:session-revoked',
        title: 'Session revoked',
        status: 401,
        detail,
        error: { message: detail, type: 'authentication_error', code: 'invalid_token', param: null },
      });
    }
    this.sessions.delete(deviceKey(userId, jkt));
    this.events.publish(userId, { type: 'session.revoked', data: { reason: 'device_revoked', detail } }, jkt);
    return cut;
  }
}

function deviceKey(userId: string, jkt: string): string {
  return `${userId}\n${jkt}`;
}

/** One distinct model list of a fan-out, and its JSON. */
interface ModelsPart {
  readonly list: ModelEntitlement[];
  readonly json: string;
}

/**
 * Time slices for work that must not hold the event loop.
 *
 * `next()` first lets the `process.nextTick` queue run (an HTTP response's write is corked
 * and reaches the socket there), so a slice's time includes the socket writes it caused and
 * the store work its promises did; then, once the budget is spent, it yields to the event
 * loop (`setImmediate`, after pending I/O) and a new slice starts.
 */
class Slices {
  private start = performance.now();

  constructor(private readonly budgetMs: number) {}

  /** Lets the queued nextTick work (socket writes) run; true once this slice's budget is spent. */
  async spent(): Promise<boolean> {
    await new Promise<void>((resolve) => process.nextTick(resolve));
    return performance.now() - this.start >= this.budgetMs;
  }

  /** Yields to the event loop (after pending I/O) and starts a new slice. */
  async yield(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.restart();
  }

  /** Starts a new slice (after something else yielded to the event loop). */
  restart(): void {
    this.start = performance.now();
  }

  /** `spent()`, then `yield()` if so. */
  async next(): Promise<void> {
    if (await this.spent()) await this.yield();
  }
}

/** Who an access record is about: the same fields for a decision and for an unknown model. */
function sessionFields(session: ActiveSession): Record<string, unknown> {
  return {
    requestId: currentRequest()?.requestId,
    user: session.userId,
    username: session.identity.username,
    sessionId: session.sessionId,
    deviceId: session.device.id,
    jkt: session.jkt,
  };
}
