import { join } from 'node:path';
import type { EventSourceMessage } from 'eventsource-parser';
import type { JWK } from 'jose';
import type { EntitlementsView, LiveUpdateState } from '../../shared/ipc';
import { ProblemDetails } from '../../shared/problem';
import { CLIENT_EVENT } from '../../shared/protocol';
import { Emitter, type Disposable } from '../events';
import type { AppPaths, Clock, HttpClient, SecretStore } from '../platform';
import { EntitlementCache } from './cache';
import { EntitlementError } from './errors';
import { EntitlementKeySet, jwksUrlFor } from './jwks';
import { GatewayEventStream, type AuthorizedFetch, type ReconnectPolicy } from './stream';
import { verifyEntitlementDocument, type VerifiedEntitlements } from './verify';
import { buildEntitlementsView, checkModelAccess, isExpired, NULL_ENTITLEMENTS_VIEW, type ModelAccess } from './view';

/** A subscribable event in VS Code's shape. */
export type Event<T> = (listener: (value: T) => void) => Disposable;

/** The gateway said this device's session is revoked (`session.revoked` on the event stream). */
export interface SessionRevocation {
  /** The gateway's reason code, when it sent one. */
  readonly reason?: string;
  /** Its sentence for the user, when it sent one. */
  readonly message?: string;
  readonly receivedAt: string;
}

/**
 * What the rest of the app needs from entitlements: the view, its change event, and a model check.
 *
 * Implemented by {@link EntitlementService} and, for signed-out or test wiring, {@link NullEntitlementService}.
 */
export interface EntitlementSource extends Disposable {
  /** Fires with the new view whenever it changes (document, staleness, live state, error). */
  readonly onDidChange: Event<EntitlementsView>;
  /** Fires when the gateway revokes this device's session; the app should end the session. */
  readonly onDidRevokeSession: Event<SessionRevocation>;
  /** The verified entitlements with staleness applied, as the renderer shows them. */
  readonly view: EntitlementsView;
  /** Whether a chat request for `modelId` may be sent now; refuses anything not plainly allowed. */
  checkModel(modelId: string): ModelAccess;
  /** Fetches the document now; never throws (a failure shows in `view.lastError` and `view.live`). */
  refresh(): Promise<EntitlementsView>;
  /** Call after any 403 from a chat call: the document is probably out of date. */
  onChatForbidden(): void;
}

/** Timings, overridable for tests. */
export interface EntitlementTiming {
  /** How often to fetch the document while the event stream is down (default 60 s). */
  readonly pollIntervalMs: number;
  readonly reconnect: ReconnectPolicy;
  /** Reconnect the stream when it carries nothing for this long (default 75 s). */
  readonly streamIdleTimeoutMs: number;
  readonly fetchTimeoutMs: number;
  /** Clock skew tolerated on `iat` and `exp` when accepting a document (default 30 s). */
  readonly leewaySeconds: number;
  /** Refetch the document this far into its lifetime while the stream is up (default 0.75). */
  readonly renewAtFraction: number;
  readonly jwksMinRefetchIntervalMs: number;
}

const DEFAULT_TIMING: EntitlementTiming = {
  pollIntervalMs: 60_000,
  reconnect: { initialMs: 1_000, maxMs: 30_000 },
  streamIdleTimeoutMs: 75_000,
  fetchTimeoutMs: 15_000,
  leewaySeconds: 30,
  renewAtFraction: 0.75,
  jwksMinRefetchIntervalMs: 30_000,
};

/** The longest delay `setTimeout` honours; longer waits are re-armed. */
const MAX_TIMER_MS = 2_147_483_647;

/** What {@link EntitlementService} is built from. */
export interface EntitlementServiceOptions {
  readonly gatewayUrl: string;
  /** The gateway session's DPoP-authorized fetch; takes a path such as `/v1/entitlements`. */
  readonly fetch: AuthorizedFetch;
  /** A plain client for the public key set. */
  readonly http: HttpClient;
  readonly secrets: SecretStore;
  readonly paths: AppPaths;
  /** Where the cache lives: the person's profile (default `<userData>/entitlements`). */
  readonly cacheDirectory?: string;
  /** The person the cache belongs to, bound into its data key and files (main/entitlements/cache.ts). */
  readonly cacheAccount?: string;
  readonly clock: Clock;
  /** The signed-in user's subject, or undefined when signed out. */
  readonly expectedSub: () => string | undefined;
  /** This installation's device key thumbprint (RFC 7638), or undefined before the key exists. */
  readonly expectedJkt: () => string | undefined;
  /** Entitlement signing keys pinned by managed settings; when given, the gateway's JWKS is not trusted. */
  readonly pinnedKeys?: readonly JWK[];
  /** The gateway's issuer identifier (from discovery). */
  readonly issuer: string;
  /** Shown with stale entitlements (from discovery's `support_contact`). */
  readonly supportContact?: string;
  readonly log?: (message: string, error?: unknown) => void;
  readonly timing?: Partial<EntitlementTiming>;
  /** For tests of reconnection jitter. */
  readonly random?: () => number;
}

function problemSentence(status: number, body: string): string {
  try {
    const problem = ProblemDetails.safeParse(JSON.parse(body));
    if (problem.success) {
      const { title, detail, message } = problem.data;
      return `The gateway refused the entitlements request (${status} ${title})${message || detail ? `: ${message ?? detail}` : '.'}`;
    }
  } catch {
    // not a problem document; fall through
  }
  return `The gateway answered the entitlements request with HTTP ${status}.`;
}

function describeNetworkError(error: unknown, timeoutMs: number): string {
  const failure = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (failure.name === 'TimeoutError') return `it did not answer within ${Math.round(timeoutMs / 1000)} s.`;
  const cause = failure.cause?.code ?? failure.cause?.message;
  return `${failure.message ?? String(error)}${cause ? ` (${cause})` : ''}.`;
}

function parseJson(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    return undefined;
  }
}

/**
 * The signed-in user's entitlements: fetched, verified, cached encrypted, kept live, failing closed.
 *
 * `start()` shows the encrypted cache at once (verified again against the cached keys), then fetches
 * the document and opens the gateway's event stream. `entitlements.changed` triggers a refetch; while
 * the stream is down the document is polled; a timer at `exp` flips the view to stale, where every
 * model is denied with `ENTITLEMENTS_STALE`. The gateway enforces every call regardless: this is what
 * the user sees and a second check before sending, never the security boundary.
 */
export class EntitlementService implements EntitlementSource {
  private readonly changes = new Emitter<EntitlementsView>();
  private readonly revocations = new Emitter<SessionRevocation>();
  /** {@inheritDoc EntitlementSource.onDidChange} */
  readonly onDidChange: Event<EntitlementsView> = this.changes.event;
  /** {@inheritDoc EntitlementSource.onDidRevokeSession} */
  readonly onDidRevokeSession: Event<SessionRevocation> = this.revocations.event;

  private readonly timing: EntitlementTiming;
  private readonly cache: EntitlementCache;
  private readonly keys: EntitlementKeySet;
  private stream: GatewayEventStream | undefined;

  private current: VerifiedEntitlements | undefined;
  private lastRefresh: number | undefined;
  private lastError: string | undefined;
  /** Whether the last fetch reached the gateway (undefined before the first). */
  private reachable: boolean | undefined;
  private streamUp = false;
  private streamWasDown = false;
  private versions: Readonly<Record<string, number>> = {};
  private versionsLoaded: Promise<void> | undefined;
  private started = false;
  private disposed = false;
  /** Bumped on sign-out so a fetch that was under way cannot bring the old document back. */
  private generation = 0;
  private inflight: Promise<EntitlementsView> | undefined;
  private refreshAgain = false;
  private expiryTimer: ReturnType<typeof setTimeout> | undefined;
  private renewTimer: ReturnType<typeof setTimeout> | undefined;
  private pollTimer: ReturnType<typeof setInterval> | undefined;
  private lastFired: string | undefined;

  constructor(private readonly options: EntitlementServiceOptions) {
    this.timing = { ...DEFAULT_TIMING, ...options.timing };
    this.cache = new EntitlementCache({
      secrets: options.secrets,
      directory: options.cacheDirectory ?? join(options.paths.userData, 'entitlements'),
      ...(options.cacheAccount !== undefined ? { account: options.cacheAccount } : {}),
      ...(options.log ? { log: options.log } : {}),
    });
    this.keys = new EntitlementKeySet({
      jwksUrl: jwksUrlFor(options.gatewayUrl),
      http: options.http,
      clock: options.clock,
      store: this.cache,
      minRefetchIntervalMs: this.timing.jwksMinRefetchIntervalMs,
      fetchTimeoutMs: this.timing.fetchTimeoutMs,
      ...(options.pinnedKeys ? { pinnedKeys: options.pinnedKeys } : {}),
      ...(options.log ? { log: options.log } : {}),
    });
  }

  /** The files kept on disk (all encrypted), for diagnostics. */
  get cacheFiles(): EntitlementCache['files'] {
    return this.cache.files;
  }

  get view(): EntitlementsView {
    const sub = this.options.expectedSub();
    if (sub === undefined) {
      return this.options.supportContact
        ? { ...NULL_ENTITLEMENTS_VIEW, supportContact: this.options.supportContact }
        : NULL_ENTITLEMENTS_VIEW;
    }
    const document = this.current?.document;
    const belongs = document && document.sub === sub && document.cnf.jkt === this.options.expectedJkt();
    return buildEntitlementsView({
      ...(belongs ? { document } : {}),
      now: this.options.clock.now(),
      // Stryker disable next-line ConditionalExpression: accept() sets lastRefresh with every document, so it is defined whenever belongs is true (the `belongs` forms are killed; all this line's forms are ignored with it).
      ...(belongs && this.lastRefresh !== undefined ? { lastRefresh: this.lastRefresh } : {}),
      live: this.live,
      unreachable: this.reachable === false,
      ...(this.options.supportContact ? { supportContact: this.options.supportContact } : {}),
      // Stryker disable next-line ConditionalExpression: `lastError: undefined` is read as absent by buildEntitlementsView (the `false` form, never showing it, is killed; ignored with it).
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
    });
  }

  private get live(): LiveUpdateState {
    if (this.streamUp) return 'connected';
    return this.reachable ? 'polling' : 'offline';
  }

  /**
   * Shows the cached document, fetches a fresh one and opens the event stream.
   *
   * Call once the user is signed in (the cache is shown even if the gateway is unreachable).
   * Resolves after the first fetch, whether or not it succeeded.
   */
  async start(): Promise<void> {
    if (this.started || this.disposed) return;
    this.started = true;
    await this.loadVersions();
    await this.loadCached();
    if (this.disposed || !this.started) return;
    this.stream = new GatewayEventStream({
      fetch: this.options.fetch,
      reconnect: this.timing.reconnect,
      idleTimeoutMs: this.timing.streamIdleTimeoutMs,
      ...(this.options.random ? { random: this.options.random } : {}),
      ...(this.options.log ? { log: this.options.log } : {}),
      onOpen: () => this.onStreamOpen(),
      onEvent: (event) => this.onStreamEvent(event),
      onDown: (error) => this.onStreamDown(error),
    });
    this.stream.start();
    await this.refresh();
  }

  /**
   * Fetches now and reconnects the stream without waiting out its backoff.
   *
   * Call when the gateway session is (re)established or the network comes back.
   */
  reconnect(): Promise<EntitlementsView> {
    this.stream?.reconnectNow();
    return this.refresh();
  }

  refresh(): Promise<EntitlementsView> {
    if (this.disposed) return Promise.resolve(this.view);
    if (this.inflight) {
      this.refreshAgain = true;
      return this.inflight;
    }
    const run = async (): Promise<EntitlementsView> => {
      try {
        do {
          this.refreshAgain = false;
          await this.fetchOnce();
        } while (this.refreshAgain && !this.disposed);
      } finally {
        this.inflight = undefined;
      }
      this.armTimers();
      this.fire();
      return this.view;
    };
    this.inflight = run();
    return this.inflight;
  }

  onChatForbidden(): void {
    void this.refresh();
  }

  checkModel(modelId: string): ModelAccess {
    return checkModelAccess(this.view, modelId);
  }

  /** Stops live updates and forgets the document (in memory and on disk); replay protection is kept. */
  async signOut(): Promise<void> {
    this.stopLive();
    this.started = false;
    // Stryker disable next-line AssignmentOperator: any change of the generation makes a fetch under way stale; `-= 1` changes it as well.
    this.generation += 1;
    this.current = undefined;
    this.lastRefresh = undefined;
    this.lastError = undefined;
    this.reachable = undefined;
    await this.cache
      .clearDocument()
      .catch((error: unknown) => this.options.log?.('Could not remove cached entitlements', error));
    this.fire();
  }

  dispose(): void {
    // Stryker disable next-line ConditionalExpression: disposing twice stops what is already stopped and empties empty emitters (the `true` form, never disposing, is killed; ignored with it).
    if (this.disposed) return;
    this.disposed = true;
    this.stopLive();
    // Stryker disable next-line CallExpression: only drops the listeners; nothing fires after dispose (fire() checks disposed, the stream is stopped).
    this.changes.dispose();
    // Stryker disable next-line CallExpression: only drops the listeners; no revocation can arrive after dispose (the stream is stopped).
    this.revocations.dispose();
  }

  private stopLive(): void {
    this.stream?.stop();
    this.stream = undefined;
    this.streamUp = false;
    this.streamWasDown = false;
    this.stopPolling();
    // Stryker disable next-line CallExpression: an expiry timer left after sign-out or dispose finds no document or a disposed service and returns.
    clearTimeout(this.expiryTimer);
    clearTimeout(this.renewTimer);
    this.expiryTimer = undefined;
    this.renewTimer = undefined;
  }

  private loadVersions(): Promise<void> {
    this.versionsLoaded ??= this.cache.loadVersions().then((stored) => {
      const merged: Record<string, number> = { ...stored };
      // Stryker disable next-line all: nothing is in memory to merge yet: every accept() awaits this load first, and it runs once.
      for (const [sub, ver] of Object.entries(this.versions)) merged[sub] = Math.max(ver, merged[sub] ?? 0);
      this.versions = merged;
    });
    return this.versionsLoaded;
  }

  private async loadCached(): Promise<void> {
    const cached = await this.cache.loadDocument();
    const sub = this.options.expectedSub();
    const jkt = this.options.expectedJkt();
    if (!cached || sub === undefined || jkt === undefined) return;
    try {
      const verified = await verifyEntitlementDocument(cached.jws, {
        resolveKey: this.keys.resolver({ network: false }),
        issuer: this.options.issuer,
        expectedSub: sub,
        expectedJkt: jkt,
        now: this.options.clock.now(),
        highestSeenVer: this.versions[sub],
        allowExpired: true,
        leewaySeconds: this.timing.leewaySeconds,
      });
      // Stryker disable next-line BooleanLiteral: persisting the cached document writes back the same JWS and fetch time it was read from.
      this.accept(verified, cached.fetchedAt, false);
      this.armTimers();
      this.fire();
    } catch (error) {
      this.options.log?.(`Ignored the cached entitlement document: ${(error as Error).message}`);
    }
  }

  private async fetchOnce(): Promise<void> {
    const generation = this.generation;
    const sub = this.options.expectedSub();
    const jkt = this.options.expectedJkt();
    if (sub === undefined || jkt === undefined) {
      this.lastError = 'Sign in to see which models you may use.';
      return;
    }
    let body: string;
    try {
      const response = await this.options.fetch('/v1/entitlements', {
        headers: { Accept: 'application/entitlements+jwt, application/jwt' },
        signal: AbortSignal.timeout(this.timing.fetchTimeoutMs),
      });
      body = await response.text();
      if (generation !== this.generation) return;
      if (!response.ok) {
        this.reachable = response.status < 500;
        this.lastError = problemSentence(response.status, body);
        this.options.log?.(this.lastError);
        return;
      }
    } catch (error) {
      if (generation !== this.generation) return;
      this.reachable = false;
      this.lastError = `Could not reach the gateway: ${describeNetworkError(error, this.timing.fetchTimeoutMs)}`;
      this.options.log?.('Could not fetch entitlements', error);
      return;
    }
    this.reachable = true;
    try {
      await this.loadVersions();
      const verified = await verifyEntitlementDocument(body, {
        resolveKey: this.keys.resolver({ network: true }),
        issuer: this.options.issuer,
        expectedSub: sub,
        expectedJkt: jkt,
        now: this.options.clock.now(),
        highestSeenVer: this.versions[sub],
        leewaySeconds: this.timing.leewaySeconds,
      });
      if (this.disposed || generation !== this.generation || this.options.expectedSub() !== sub) return;
      this.accept(verified, this.options.clock.now(), true);
    } catch (error) {
      const code = error instanceof EntitlementError ? error.code : 'UNEXPECTED';
      this.lastError = (error as Error).message;
      this.options.log?.(`Refused an entitlement document (${code}): ${this.lastError}`, error);
    }
  }

  private accept(verified: VerifiedEntitlements, fetchedAt: number, persist: boolean): void {
    const { sub, ver } = verified.document;
    this.current = verified;
    this.lastRefresh = fetchedAt;
    this.lastError = undefined;
    // Stryker disable next-line EqualityOperator: `<=` writes the same high-water mark again; the other forms are killed and ignored with it.
    if ((this.versions[sub] ?? -1) < ver) {
      this.versions = { ...this.versions, [sub]: ver };
      this.cache
        .saveVersions(this.versions)
        .catch((error: unknown) => this.options.log?.('Could not record the entitlement version', error));
    }
    // Stryker disable next-line ConditionalExpression: `true` writes back the cached document unchanged (see accept's caller); the `false` form is killed and ignored with it.
    if (persist) {
      this.cache
        .saveDocument({ jws: verified.jws, fetchedAt })
        .catch((error: unknown) => this.options.log?.('Could not keep entitlements for offline use', error));
    }
  }

  private onStreamOpen(): void {
    this.streamUp = true;
    this.stopPolling();
    if (this.streamWasDown || this.reachable === false) {
      this.streamWasDown = false;
      void this.refresh();
    }
    // Stryker disable next-line CallExpression: the timers are already armed (the last refresh armed them, or the refresh just started will).
    this.armTimers();
    this.fire();
  }

  private onStreamDown(error: Error): void {
    const wasUp = this.streamUp;
    this.streamUp = false;
    this.streamWasDown = true;
    this.ensurePolling();
    if (wasUp) {
      this.options.log?.(`Entitlement updates fell back to polling: ${error.message}`);
      void this.refresh();
      this.fire();
    }
  }

  private onStreamEvent(event: EventSourceMessage): void {
    if (event.event === CLIENT_EVENT.entitlementsChanged) {
      const data = parseJson(event.data) as { ver?: unknown } | undefined;
      const ver = typeof data?.ver === 'number' ? data.ver : undefined;
      const known = this.current?.document;
      const upToDate = ver !== undefined && known !== undefined && ver <= known.ver;
      if (!upToDate || (known && isExpired(known, this.options.clock.now()))) void this.refresh();
    } else if (event.event === CLIENT_EVENT.sessionRevoked) {
      const data = parseJson(event.data) as { reason?: unknown; message?: unknown; detail?: unknown } | undefined;
      const message =
        typeof data?.message === 'string' ? data.message : typeof data?.detail === 'string' ? data.detail : undefined;
      this.revocations.fire({
        ...(typeof data?.reason === 'string' ? { reason: data.reason } : {}),
        ...(message !== undefined ? { message } : {}),
        receivedAt: new Date(this.options.clock.now()).toISOString(),
      });
    }
  }

  private ensurePolling(): void {
    if (this.pollTimer || this.disposed || !this.started) return;
    clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
    this.pollTimer = setInterval(() => void this.refresh(), this.timing.pollIntervalMs);
    // Stryker disable next-line OptionalChaining: Node's timers (the main process's) always have unref.
    this.pollTimer.unref?.();
  }

  private stopPolling(): void {
    clearInterval(this.pollTimer);
    this.pollTimer = undefined;
  }

  /** Arms the timer that flips the view to stale at `exp`, and (while the stream is up) the renewal. */
  private armTimers(): void {
    clearTimeout(this.expiryTimer);
    clearTimeout(this.renewTimer);
    this.expiryTimer = undefined;
    this.renewTimer = undefined;
    const document = this.current?.document;
    if (!document || this.disposed) return;
    const now = this.options.clock.now();
    const expiresAt = document.exp * 1000;
    if (now < expiresAt) {
      this.expiryTimer = setTimeout(() => this.onExpiryTimer(), Math.min(expiresAt - now, MAX_TIMER_MS));
      // Stryker disable next-line OptionalChaining: Node's timers (the main process's) always have unref.
      this.expiryTimer.unref?.();
    }
    if (this.started && !this.pollTimer) {
      const renewAt = (document.iat + (document.exp - document.iat) * this.timing.renewAtFraction) * 1000;
      const delay = renewAt > now ? renewAt - now : this.timing.pollIntervalMs;
      this.renewTimer = setTimeout(() => void this.refresh(), Math.min(delay, MAX_TIMER_MS));
      // Stryker disable next-line OptionalChaining: Node's timers (the main process's) always have unref.
      this.renewTimer.unref?.();
    }
  }

  private onExpiryTimer(): void {
    this.expiryTimer = undefined;
    const document = this.current?.document;
    if (!document || this.disposed) return;
    const now = this.options.clock.now();
    if (!isExpired(document, now)) {
      this.expiryTimer = setTimeout(() => this.onExpiryTimer(), Math.min(document.exp * 1000 - now, MAX_TIMER_MS));
      // Stryker disable next-line OptionalChaining: Node's timers (the main process's) always have unref.
      this.expiryTimer.unref?.();
      return;
    }
    this.options.log?.(
      `Entitlement document version ${document.ver} expired; every model is unavailable until it is renewed`,
    );
    this.fire();
    if (this.started) void this.refresh();
  }

  private fire(): void {
    if (this.disposed) return;
    const view = this.view;
    const key = JSON.stringify(view);
    if (key === this.lastFired) return;
    this.lastFired = key;
    this.changes.fire(view);
  }
}

/**
 * The entitlement source for when nobody is signed in: no models, every check refused.
 */
export class NullEntitlementService implements EntitlementSource {
  readonly onDidChange: Event<EntitlementsView> = () => ({ dispose: () => undefined });
  readonly onDidRevokeSession: Event<SessionRevocation> = () => ({ dispose: () => undefined });

  /** `supportContact` may be a function, for a contact known only later (discovery answers after start). */
  constructor(private readonly supportContact?: string | (() => string | undefined)) {}

  get view(): EntitlementsView {
    const contact = typeof this.supportContact === 'function' ? this.supportContact() : this.supportContact;
    return contact ? { ...NULL_ENTITLEMENTS_VIEW, supportContact: contact } : NULL_ENTITLEMENTS_VIEW;
  }

  checkModel(modelId: string): ModelAccess {
    return checkModelAccess(this.view, modelId);
  }

  refresh(): Promise<EntitlementsView> {
    return Promise.resolve(this.view);
  }

  onChatForbidden(): void {}

  dispose(): void {}
}
