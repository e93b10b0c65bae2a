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
 * Live access decisions for sessions: decide, audit, build entitlement content, and react
 * to policy or catalog changes by pushing `entitlements.changed` and cutting denied streams.
 */
export class AccessService {
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
  ) {}

  /** Remembers a session so policy changes reach it until its token expires. */
  track(session: ActiveSession): void {
    this.sessions.set(session.sessionId, session);
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
        requestId: currentRequest()?.requestId,
        user: session.userId,
        username: session.identity.username,
        sessionId: session.sessionId,
        deviceId: session.device.id,
        jkt: session.jkt,
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
        user: session.userId,
        sessionId: session.sessionId,
        jkt: session.jkt,
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
    const policies = new Map(this.engine.policies.map((policy) => [policy.id, policy]));
    const models: ModelEntitlement[] = this.catalog().models.map((model) => {
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
    const device = { id: session.device.id, assurance: session.device.assurance, compliant: session.device.compliant };
    const fingerprint = createHash('sha256').update(JSON.stringify({ device, models })).digest('hex');
    const ver = await this.versions.versionFor(session.userId, fingerprint);
    return { aud: 'clearance-desktop', sub: session.userId, ver, cnf: { jkt: session.jkt }, device, models };
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
   * Denied completions are cut first (they are what must stop within a second), then each
   * tracked session's entitlements are recomputed and `entitlements.changed` is pushed to
   * users whose `ver` rose.
   */
  async applyChange(trigger: string): Promise<{ cut: number; notified: number }> {
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
    const now = Date.now() / 1000;
    const notified = new Set<string>();
    // All sessions at once: their version writes share one group commit instead of one each.
    const live: ActiveSession[] = [];
    for (const [id, session] of this.sessions) {
      if (session.expiresAt < now) this.sessions.delete(id);
      else live.push(session);
    }
    await Promise.all(
      live.map(async (session) => {
        const before = await this.versions.current(session.userId);
        const { ver } = await this.entitlements(session);
        if (ver > before && !notified.has(session.userId)) {
          this.events.publish(session.userId, { type: 'entitlements.changed', data: { ver } });
          notified.add(session.userId);
        }
      }),
    );
    if (cut > 0 || notified.size > 0) {
      this.log(`${trigger}: cut ${cut} completion(s), notified ${notified.size} user(s)`);
    }
    return { cut, notified: notified.size };
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
    for (const [id, session] of this.sessions) if (session.userId === userId) this.sessions.delete(id);
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
    for (const [id, session] of this.sessions) {
      if (session.userId === userId && session.jkt === jkt) this.sessions.delete(id);
    }
    this.events.publish(userId, { type: 'session.revoked', data: { reason: 'device_revoked', detail } }, jkt);
    return cut;
  }
}
