import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { z } from 'zod';
import { DiscoveryDocument, type DeviceGateScope } from '../shared/discovery';
import type { ProblemDetails } from '../shared/problem';
import type { DeviceAssurance, PostureCheckId } from '../shared/device';
import { REQUEST_ID_HEADER } from '../shared/protocol';
import { AccessService, principalFromGroups } from './access';
import { DpopVerifier, type DpopOptions, type DpopReplayCache } from './auth/dpop';
import { EntitlementSigner } from './auth/entitlement-signer';
import { AuthError } from './auth/errors';
import {
  DEFAULT_CLAIM_MAPPING,
  IdentityTokenVerifier,
  type ClaimMapping,
  type IdentityProviderSettings,
} from './auth/identity-token';
import { GatewayKeys } from './auth/keys';
import { RequestAuthenticator } from './auth/request-auth';
import { SESSION_TOKEN_LIFETIME_SECONDS, SessionTokens } from './auth/session-token';
import { Catalog, DEFAULT_CATALOG_PATH, type CatalogFile, type CatalogModel } from './catalog';
import { CatalogSource } from './catalog-source';
import type { ModelOutcome } from './policy/describe';
import { registerCompletionsRoute } from './chat/completions-route';
import { modelParameters } from './chat/parameters';
import {
  createUpstreamDispatcher,
  DEFAULT_MAX_UPSTREAM_EVENT_BYTES,
  DEFAULT_UPSTREAM_TIMEOUTS,
  UpstreamError,
  type UpstreamTimeouts,
} from './chat/upstream';
import { registerDeviceAdminRoutes } from './device/attestation/admin-routes';
import { admitDevice } from './device/attestation/admission';
import type { EnrolmentStore } from './device/attestation/enrolments';
import { openDeviceTrust, type DeviceTrustOptions } from './device/attestation/options';
import type { PendingActivationStore } from './device/attestation/pending-activations';
import {
  refuseUnattestedSessionKey,
  registerAttestationRoute,
  verifySessionAttestation,
  verifySessionKey,
} from './device/attestation/session-evidence';
import { InMemoryChallengeStore, type ChallengeStore } from './device/challenges';
import { DEFAULT_LIMITS, PrincipalRateLimits, QuotaExceeded, type LimitSettings } from './limits/quotas';
import type { ChangeBus, ClusterChange } from './cluster';
import { deviceVerdict, PostureError, verifyPostureReport } from './device/posture';
import { EventHub } from './events/hub';
import { randomHex } from './http/ids';
import { apiErrorType, problem, ProblemError, sendProblem } from './http/problems';
import { formatSseComment, SSE_HEADERS } from './http/sse';
import { DEFAULT_POLICIES_DIR, PolicyEngine, type PolicyLoadResult, type PolicyReloadOptions } from './policy/engine';
import type { PolicyCheckerOptions } from './policy/checker';
import { watchSource } from './policy/watch';
import { SqliteAuditLog, type AuditLog } from './store/audit-log';
import { AuditTrail } from './audit/trail';
import { CHECKPOINT_FILE, CheckpointWriter, loadCheckpointKey } from './audit/checkpoints';
import { checkAuditTail } from './audit/verify';
import { openGatewayDatabase } from './store/database';
import { SqliteDeviceRegistry, type DeviceRegistry } from './store/device-registry';
import { SqliteEntitlementVersions, type EntitlementVersions } from './store/entitlement-versions';
import {
  InMemoryUserSuspensions,
  SqliteUserSuspensions,
  type UserSuspension,
  type UserSuspensions,
} from './store/user-suspensions';
import { CachedUserSuspensions } from './store/suspension-cache';
import { SESSION_REVOKED_REASON } from '../shared/protocol';
import type { Subscription } from './signal';
import { currentRequest, observeRequest, serverTiming } from './observability/context';
import { GatewayMetrics } from './observability/metrics';

/** What `/.well-known/clearance` tells clients about signing in. */
export interface DiscoverySettings {
  readonly identityProvider: {
    readonly authority: string;
    readonly clientId: string;
    readonly scopes: readonly string[];
    readonly protocol: 'AAD' | 'OIDC';
  };
  readonly supportContact?: string;
  readonly minOsVersions?: Readonly<Record<string, string>>;
  /** The oldest app version clients may run; older apps explain and offer the update. */
  readonly minAppVersion?: string;
}

/** Configuration of one gateway instance. */
export interface GatewayOptions {
  /** Holds `gateway.db`, `keys/` and `admin-token`. */
  readonly stateDir: string;
  /** 0 (the default) picks a free port. */
  readonly port?: number;
  /** Interface to listen on; default 127.0.0.1. */
  readonly host?: string;
  /** The URL clients use (issuer, `htu` base); default `http://127.0.0.1:<port>` (`https` with `tls`). */
  readonly publicUrl?: string;
  /**
   * Terminate TLS here (PEM key and certificate chain) instead of behind a proxy; then a client
   * certificate is requested when `deviceTrust.deviceCertificates` is set (mutual TLS).
   */
  readonly tls?: { readonly key: string; readonly cert: string };
  /** Default `gateway/policies`. Watched for changes. */
  readonly policiesDir?: string;
  /** The worker thread policy reloads are checked in; tests only (a faulty one must fail closed). */
  readonly policyChecker?: PolicyCheckerOptions;
  /** A catalog file path (watched) or catalog content; default `gateway/catalog.json`. */
  readonly catalog?: string | CatalogFile;
  readonly identityProvider: IdentityProviderSettings;
  readonly claims?: Partial<ClaimMapping>;
  readonly discovery: DiscoverySettings;
  /** Posture checks that must all `pass` for a device to be compliant. */
  readonly requiredChecks?: readonly PostureCheckId[];
  /**
   * Published as discovery's `device_policy.scope`: `app` (default) gates the whole app on the required
   * checks; `models` lets a non-compliant device in and leaves each model to the policy (device.cedar).
   */
  readonly deviceGateScope?: DeviceGateScope;
  /** Speed of the built-in demo model; default 40 tokens/s. */
  readonly demoTokensPerSecond?: number;
  readonly upstreamTimeouts?: Partial<UpstreamTimeouts>;
  /** Largest upstream event and line, in bytes; a larger one fails the completion with 502. Default 1 MiB. */
  readonly maxUpstreamEventBytes?: number;
  /** Where upstream API key variables are read; default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Bearer token for `/v1/admin/*`; default: read from or created in `<stateDir>/admin-token`. */
  readonly adminToken?: string;
  readonly dpop?: DpopOptions;
  /** Fan-out of revocations, suspensions and policy changes to the other instances. */
  readonly bus?: ChangeBus;
  /** Seconds between SSE heartbeat comments; default 15. */
  readonly heartbeatSeconds?: number;
  /** Quiet time after a file change before reloading; default 100 ms. */
  readonly reloadDebounceMs?: number;
  /** Seconds between reconciles of the policies folder and catalog file by content hash; default 10, 0 = off. */
  readonly reconcileSeconds?: number;
  /** Per-principal limits (requests, challenges, replay entries, body sizes); defaults in `DEFAULT_LIMITS`. */
  readonly limits?: Partial<LimitSettings>;
  /**
   * Addresses of the reverse proxies in front of the gateway (IPs or CIDR ranges).
   *
   * Only from these peers is `X-Forwarded-For` read, so the per-address limit and the audit's
   * `address` see the real client; from any other peer the header is ignored. Without it, behind a
   * proxy every caller shares the proxy's one address budget, so one outsider could starve everyone.
   */
  readonly trustedProxies?: readonly string[];
  /** Shared quota stores for several instances; default in memory. */
  readonly quotaStores?: {
    readonly challenges?: ChallengeStore;
    readonly dpopReplay?: DpopReplayCache;
    /** An ioredis client for @fastify/rate-limit's counters. */
    readonly rateLimitRedis?: unknown;
    /** TPM credentials waiting for activation (the session request may reach another instance). */
    readonly activations?: PendingActivationStore;
  };
  /** Storage overrides (a shared database for several instances); default SQLite in `stateDir`. */
  readonly stores?: {
    readonly devices: DeviceRegistry;
    readonly audit: AuditLog;
    readonly versions: EntitlementVersions;
    /** Suspended accounts; without one, suspensions live in this instance's memory only. */
    readonly suspensions?: UserSuspensions;
    /** Device enrolments (pending, approved, retired); without one, a file in this instance's `stateDir`. */
    readonly enrolments?: EnrolmentStore;
  };
  /** Enrolment policy and its store (docs/it-deployment.md, "Enrolment policy"). */
  readonly deviceTrust?: DeviceTrustOptions;
  readonly log?: (line: string) => void;
  /** One structured entry per answered request (JSON lines in `npm run stack`); default none. */
  readonly requestLog?: (entry: RequestLogEntry) => void;
  /** When set, `GET /metrics` needs `Authorization: Bearer <metricsToken>`; default open (bind it privately). */
  readonly metricsToken?: string;
  /** Collect Node process metrics too (event loop, memory, GC); default true. */
  readonly processMetrics?: boolean;
  /** Seconds between signed audit checkpoints (written only when the chain grew); default 60, 0 = on shutdown only. */
  readonly auditCheckpointSeconds?: number;
}

/** The structured log entry of one request. */
export interface RequestLogEntry {
  readonly time: string;
  readonly requestId: string;
  readonly method: string;
  /** The route pattern, or `unmatched`. */
  readonly route: string;
  readonly status: number;
  readonly decision: 'allow' | 'deny' | 'none';
  readonly durationMs: number;
  /** Milliseconds per gateway phase (auth, policy, audit, upstream first byte). */
  readonly phases: Readonly<Record<string, number>>;
}

/** A started gateway. */
export interface RunningGateway {
  /** `http://127.0.0.1:PORT` (or `publicUrl`). */
  readonly url: string;
  readonly adminToken: string;
  readonly policy: PolicyEngine;
  readonly audit: AuditLog;
  readonly devices: DeviceRegistry;
  readonly access: AccessService;
  /** Per-user SSE fan-out (`entitlements.changed`, `session.revoked`). */
  readonly events: EventHub;
  /** Prometheus metrics of this instance (`GET /metrics`). */
  readonly metrics: GatewayMetrics;
  /** The authenticator with its token and enrolment caches. */
  readonly auth: RequestAuthenticator;
  /** The catalog in force. */
  catalog(): Catalog;
  /** Re-reads the policies folder and waits until connected clients have been updated. */
  reloadPolicies(options?: PolicyReloadOptions): Promise<PolicyLoadResult>;
  /** Re-reads the catalog file (when the catalog came from a file). */
  reloadCatalog(): Promise<{ ok: boolean; error?: string }>;
  /** Revokes a user's device key: its streams get `session.revoked`, completions are cut; `actor` is audited (default `gateway-api`). */
  revokeDevice(userId: string, jkt: string, actor?: string): Promise<boolean>;
  close(): Promise<void>;
}

/** Required posture checks when none are configured. */
export const DEFAULT_REQUIRED_CHECKS: readonly PostureCheckId[] = [
  'os-version',
  'disk-encryption',
  'screen-lock',
  'firewall',
];

/**
 * Starts the enforcement gateway: every endpoint of the client protocol (docs/protocol.md).
 */
export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  const log = options.log ?? ((line: string) => console.log(`[gateway] ${line}`));
  mkdirSync(options.stateDir, { recursive: true, mode: 0o700 });
  const claimMapping: ClaimMapping = { ...DEFAULT_CLAIM_MAPPING, ...options.claims };
  const requiredChecks = [...(options.requiredChecks ?? DEFAULT_REQUIRED_CHECKS)];

  const catalogSource = CatalogSource.open(options.catalog ?? DEFAULT_CATALOG_PATH, log);
  const catalogPath = catalogSource.path;
  let catalog: Catalog = catalogSource.current();
  const policy = PolicyEngine.create({
    policiesDir: options.policiesDir ?? DEFAULT_POLICIES_DIR,
    log,
    ...(options.policyChecker ? { checker: options.policyChecker } : {}),
  });
  const keys = await GatewayKeys.loadOrCreate(join(options.stateDir, 'keys'));
  const checkpointKey = await loadCheckpointKey(options.stateDir);
  const adminToken = options.adminToken ?? loadOrCreateAdminToken(join(options.stateDir, 'admin-token'));
  const database = options.stores ? undefined : openGatewayDatabase(join(options.stateDir, 'gateway.db'));
  const devices = options.stores?.devices ?? new SqliteDeviceRegistry(database!);
  const audit = new AuditTrail(options.stores?.audit ?? new SqliteAuditLog(database!));
  const versions = options.stores?.versions ?? new SqliteEntitlementVersions(database!);
  // Looked up on every authenticated call: cached, dropped at once by a change here or (fanned out) elsewhere.
  const suspensions = new CachedUserSuspensions(
    options.stores?.suspensions ?? (database ? new SqliteUserSuspensions(database) : new InMemoryUserSuspensions()),
  );
  if (options.stores && !options.stores.suspensions)
    log('suspensions are kept in memory: pass stores.suspensions to share them');
  let trust: ReturnType<typeof openDeviceTrust>;
  try {
    const enrolments = options.deviceTrust?.enrolments ?? options.stores?.enrolments;
    const activations = options.deviceTrust?.activations ?? options.quotaStores?.activations;
    trust = openDeviceTrust(
      enrolments || activations
        ? {
            ...options.deviceTrust,
            ...(enrolments ? { enrolments } : {}),
            ...(activations ? { activations } : {}),
          }
        : options.deviceTrust,
      database,
      options.stateDir,
    );
    if (options.stores && !enrolments)
      log('device enrolments are kept in this instance only: pass stores.enrolments to share them');
  } catch (error) {
    database?.close();
    throw error;
  }
  log(`enrolment policy: ${trust.policy.name}`);
  // The chain must still hold what the newest signed checkpoint covers; if not, say so in the log and health.
  await audit.init();
  const checkpointPath = join(options.stateDir, CHECKPOINT_FILE);
  const auditTail = await checkAuditTail(audit, checkpointPath, checkpointKey.publicJwk);
  if (auditTail.problem) log(`AUDIT CHAIN DOES NOT MATCH ITS SIGNED CHECKPOINT: ${auditTail.problem}`);
  const checkpoints = new CheckpointWriter(checkpointPath, checkpointKey, audit, log);
  checkpoints.start((options.auditCheckpointSeconds ?? 60) * 1000, auditTail.newest);

  // With its own TLS, the gateway asks for (but does not demand) a client certificate when it trusts a device CA.
  const server = options.tls
    ? createTlsServer({
        key: options.tls.key,
        cert: options.tls.cert,
        ...(trust.certificates
          ? { requestCert: true, rejectUnauthorized: false, ca: [...trust.certificates.caPem] }
          : {}),
      })
    : createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('Gateway did not get a TCP port');
  const scheme = options.tls ? 'https' : 'http';
  const url = (options.publicUrl ?? `${scheme}://127.0.0.1:${address.port}`).replace(/\/+$/, '');
  const origins = [new URL(url).origin];
  if (!options.publicUrl) origins.push(`${scheme}://localhost:${address.port}`);

  const events = new EventHub();
  const upstreamDispatcher = createUpstreamDispatcher();
  const access = new AccessService(policy, () => catalog, audit, versions, events, log);
  const limits: LimitSettings = { ...DEFAULT_LIMITS, ...options.limits };
  const dpop = new DpopVerifier({
    replayEntriesPerKey: limits.replayEntriesPerDevice,
    ...(options.quotaStores?.dpopReplay ? { replay: options.quotaStores.dpopReplay } : {}),
    ...options.dpop,
  });
  const sessionTokens = new SessionTokens(keys.session, url);
  const signer = new EntitlementSigner(keys.entitlements, url);
  const identity = new IdentityTokenVerifier(options.identityProvider, claimMapping);
  // Built once the rate-limit plugin is registered on the app below.
  const principalLimits: { current?: PrincipalRateLimits } = {};
  const auth = new RequestAuthenticator(
    identity,
    sessionTokens,
    dpop,
    devices,
    claimMapping,
    () => origins,
    async (request, principal) => {
      const suspension = await suspensions.find(principal.userId);
      if (suspension) {
        const record = await audit.append({
          kind: 'access',
          subject: principal.userId,
          data: {
            effect: 'deny',
            reason: 'ACCOUNT_SUSPENDED',
            endpoint: `${request.method} ${request.url.split('?')[0]}`,
            ...(principal.jkt ? { jkt: principal.jkt } : {}),
          },
        });
        throw new ProblemError(suspendedProblem(suspension, record.decisionId));
      }
      await principalLimits.current?.check(request as FastifyRequest, principal);
    },
  );
  const challenges =
    options.quotaStores?.challenges ?? new InMemoryChallengeStore({ perUser: limits.challengesPerUser });
  const metrics = new GatewayMetrics(
    () => ({
      decisions: policy.cacheEntries,
      session_tokens: sessionTokens.cacheEntries,
      device_keys: dpop.keyCacheEntries,
      enrolments: auth.enrolmentCacheEntries,
      suspensions: suspensions.size,
      dpop_replay: dpop.replay.size?.(),
    }),
    options.processMetrics ?? true,
  );
  const heartbeatMs = (options.heartbeatSeconds ?? 15) * 1000;

  let pendingChange: Promise<unknown> = Promise.resolve();
  const applyChange = (trigger: string) => {
    pendingChange = pendingChange
      .then(() => access.applyChange(trigger))
      .catch((error: unknown) => log(`applying ${trigger} failed: ${(error as Error).message}`));
    return pendingChange;
  };
  const subscriptions: Subscription[] = [];
  subscriptions.push(
    policy.onDidChange((revision) => {
      void audit
        .append({
          kind: 'policy',
          data: { revision, digest: policy.digest, policies: policy.policies.map((p) => p.id) },
        })
        .catch((error: unknown) => log(`auditing policy revision ${revision} failed: ${(error as Error).message}`));
      void applyChange(`policy revision ${revision}`);
      if (options.bus) {
        metrics.fannedOut('policy', 'local');
        options.bus
          .publish({ kind: 'policy', digest: policy.digest })
          .catch((error: unknown) =>
            log(`fanning out policy revision ${revision} failed: ${(error as Error).message}`),
          );
      }
    }),
  );
  const watchOptions = {
    debounceMs: options.reloadDebounceMs ?? 100,
    reconcileMs: (options.reconcileSeconds ?? 10) * 1000,
  };
  // Reading and validating run in the engine's worker thread; only the swap is on this loop.
  const reloadPolicy = async (reloadOptions?: PolicyReloadOptions): Promise<PolicyLoadResult> => {
    const result = await policy.reload(reloadOptions);
    metrics.reload('policy', !result.ok ? 'rejected' : result.changed ? 'ok' : 'unchanged');
    return result;
  };
  subscriptions.push(watchSource(policy.policiesDir, watchOptions, () => void reloadPolicy(), log));
  const reloadCatalog = async (): Promise<{ ok: boolean; error?: string }> => {
    const result = catalogSource.reload();
    metrics.reload('catalog', !result.ok ? 'rejected' : result.changed ? 'ok' : 'unchanged');
    if (!result.ok) return { ok: false, error: result.error };
    if (!result.changed) return { ok: true };
    catalog = catalogSource.current();
    void audit
      .append({ kind: 'catalog', data: { revision: catalog.revision, models: catalog.models.map((m) => m.id) } })
      .catch((error: unknown) => log(`auditing catalog ${catalog.revision} failed: ${(error as Error).message}`));
    await applyChange(`catalog ${catalog.revision}`);
    return { ok: true };
  };
  if (catalogPath !== undefined) {
    subscriptions.push(watchSource(catalogPath, watchOptions, () => void reloadCatalog(), log));
  }

  let closing = false;
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const app = Fastify({
    logger: false,
    bodyLimit: limits.smallBodyBytes,
    trustProxy: options.trustedProxies?.length ? [...options.trustedProxies] : false,
    requestIdHeader: false,
    genReqId: (request) => currentRequest()?.requestId ?? requestIdFor(request.headers[REQUEST_ID_HEADER]),
    serverFactory: (h) => {
      handler = h;
      return server as Server;
    },
  });
  // Synchronous hooks take the callback form: an async one costs a promise and a microtask per request.
  app.addHook('onRequest', (request, reply, done) => {
    // First, so every answer (a 429 too) carries it; on the raw response too, for hijacked streams.
    reply.raw.setHeader(REQUEST_ID_HEADER, request.id);
    reply.header(REQUEST_ID_HEADER, request.id);
    const observation = currentRequest();
    if (observation) observation.route = request.routeOptions.url ?? 'unmatched';
    done();
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    const observation = currentRequest();
    if (observation) reply.header('server-timing', serverTiming(observation));
    done(null, payload);
  });
  await app.register(rateLimit, {
    global: true,
    hook: 'onRequest',
    max: limits.perAddress.max,
    timeWindow: limits.perAddress.windowMs,
    ...(options.quotaStores?.rateLimitRedis ? { redis: options.quotaStores.rateLimitRedis } : {}),
    allowList: (request) => UNLIMITED_PATHS.has(request.url.split('?')[0] ?? ''),
    errorResponseBuilder: (_request, context) =>
      new QuotaExceeded(
        'address',
        `Too many requests from this address; retry in ${Math.ceil(context.ttl / 1000)} s.`,
        Math.ceil(context.ttl / 1000),
      ),
  });
  principalLimits.current = new PrincipalRateLimits(app, limits);
  // A chat request may be large, so its caller is authenticated before the body is read;
  // every other route parses at most `smallBodyBytes` from anyone.
  app.addHook('onRoute', (route) => {
    if (route.url === COMPLETIONS_PATH) route.bodyLimit = limits.completionBodyBytes;
  });
  app.addHook('preParsing', async (request) => {
    if (request.routeOptions.url === COMPLETIONS_PATH) await auth.sessionFromDpop(request);
  });
  if (dpop.requireNonce) {
    app.addHook('onSend', (_request, reply, payload, done) => {
      reply.header('dpop-nonce', dpop.currentNonce());
      done(null, payload);
    });
  }
  /**
   * Records a refusal no route recorded (a 401, a failed admin authentication, a refused session)
   * and answers its decision id; a flood of 429s and plain bad requests elsewhere are not recorded.
   */
  const auditRefusal = async (request: FastifyRequest, error: unknown): Promise<string | undefined> => {
    if (error instanceof QuotaExceeded || audit.wasAudited(currentRequest())) return undefined;
    const route = request.routeOptions.url;
    const isSession = route === '/v1/session' || route === '/v1/device/attestation';
    const isAdmin = route?.startsWith('/v1/admin/') ?? false;
    let status: number;
    let code: string;
    if (error instanceof AuthError) [status, code] = [error.status, error.error];
    else if (error instanceof ProblemError)
      [status, code] = [error.problem.status, error.problem.reason ?? error.problem.type.replace(/^.*:/, '')];
    else if (error instanceof PostureError) [status, code] = [400, 'invalid_posture'];
    else if (error instanceof z.ZodError) [status, code] = [400, 'invalid_request'];
    else return undefined;
    if (!(status === 401 || status === 403 || ((isSession || isAdmin) && status >= 400 && status < 500)))
      return undefined;
    const endpoint = `${request.method} ${request.url.split('?')[0]}`;
    try {
      const record = await audit.append({
        kind: isAdmin ? 'admin' : isSession ? 'session' : 'access',
        data: {
          effect: 'deny',
          status,
          code,
          endpoint,
          address: request.ip,
          ...(isAdmin && status === 401 ? { action: 'admin.auth-failed' } : {}),
          ...(error instanceof Error ? { detail: error.message.slice(0, 300) } : {}),
        },
      });
      return record.decisionId;
    } catch (failure) {
      log(`auditing a refusal of ${endpoint} failed: ${(failure as Error).message}`);
      return undefined;
    }
  };
  app.setErrorHandler(async (error: FastifyError, request, reply) => {
    const decisionId = await auditRefusal(request, error);
    const withDecision = decisionId ? { decisionId } : {};
    if (error instanceof ProblemError) {
      const body = error.problem.decisionId || !decisionId ? error.problem : { ...error.problem, decisionId };
      return sendProblem(reply, body, error.headers);
    }
    if (error instanceof AuthError) {
      const headers: Record<string, string> = {
        'www-authenticate': `${error.scheme} error="${error.error}", error_description="${error.detail.replace(/["\\]/g, "'")}"${
          error.scheme === 'DPoP' ? ', algs="ES256 EdDSA"' : ''
        }`,
      };
      if (error.error === 'use_dpop_nonce') headers['dpop-nonce'] = dpop.currentNonce();
      const title =
        error.error === 'invalid_dpop_proof' || error.error === 'use_dpop_nonce'
          ? 'Invalid DPoP proof'
          : 'Unauthorized';
      return sendProblem(
        reply,
        problem('unauthorized', error.status, title, error.detail, {
          ...withDecision,
          error: { message: error.detail, type: apiErrorType(error.status), code: error.error, param: null },
        }),
        headers,
      );
    }
    if (error instanceof QuotaExceeded) {
      return sendProblem(reply, problem('too-many-requests', 429, 'Too many requests', error.detail), {
        'retry-after': String(Math.max(1, error.retryAfterSeconds)),
      });
    }
    if (error instanceof PostureError) {
      return sendProblem(reply, problem('bad-request', 400, 'Invalid posture report', error.detail, withDecision));
    }
    if (error instanceof UpstreamError) {
      const kind = error.status === 504 ? 'upstream-timeout' : 'upstream-error';
      return sendProblem(
        reply,
        problem(kind, error.status, error.status === 504 ? 'Model timed out' : 'Model unavailable', error.detail),
      );
    }
    if (error instanceof z.ZodError) {
      const issues = error.issues.map((issue) => `${issue.path.join('.') || '(body)'}: ${issue.message}`).join('; ');
      return sendProblem(reply, problem('bad-request', 400, 'Invalid request', issues, withDecision));
    }
    const status = typeof error.statusCode === 'number' ? error.statusCode : 500;
    if (status === 413)
      return sendProblem(reply, problem('payload-too-large', 413, 'Request body too large', error.message));
    if (status === 415)
      return sendProblem(reply, problem('unsupported-media-type', 415, 'Unsupported media type', error.message));
    if (status >= 400 && status < 500)
      return sendProblem(reply, problem('bad-request', status, 'Invalid request', error.message));
    log(`internal error: ${error.stack ?? error.message}`);
    return sendProblem(reply, problem('internal-error', 500, 'Internal error', 'The gateway failed; see its log.'));
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(
      reply,
      problem('not-found', 404, 'Not found', `No endpoint ${request.method} ${request.url.split('?')[0]}`),
    ),
  );

  const discovery = DiscoveryDocument.parse({
    issuer: url,
    jwks_uri: `${url}/.well-known/jwks.json`,
    identity_provider: {
      authority: options.discovery.identityProvider.authority,
      client_id: options.discovery.identityProvider.clientId,
      scopes: [...options.discovery.identityProvider.scopes],
      protocol: options.discovery.identityProvider.protocol,
    },
    endpoints: {
      device_challenge: `${url}/v1/device/challenge`,
      ...(trust.tpm ? { device_attestation: `${url}/v1/device/attestation` } : {}),
      session: `${url}/v1/session`,
      entitlements: `${url}/v1/entitlements`,
      events: `${url}/v1/events`,
      models: `${url}/v1/models`,
      chat_completions: `${url}/v1/chat/completions`,
    },
    device_policy: {
      required_checks: requiredChecks,
      enrolment: trust.policy.name,
      scope: options.deviceGateScope ?? 'app',
      ...(options.discovery.minOsVersions ? { min_os_versions: { ...options.discovery.minOsVersions } } : {}),
    },
    ...(options.discovery.supportContact ? { support_contact: options.discovery.supportContact } : {}),
    ...(options.discovery.minAppVersion ? { min_app_version: options.discovery.minAppVersion } : {}),
  });

  app.get('/.well-known/clearance', async (_request, reply) =>
    reply.header('cache-control', 'max-age=300').send(discovery),
  );
  const health = () => ({
    status:
      policy.lastRefused || catalogSource.lastRefused || auditTail.problem || checkpoints.lastFailure
        ? 'degraded'
        : 'ok',
    policy: {
      revision: policy.revision,
      digest: policy.digest,
      policies: policy.policies.length,
      loadedAt: policy.loadedAt,
      lastRefused: refusalForHealth(policy.lastRefused),
    },
    catalog: {
      revision: catalog.revision,
      models: catalog.models.length,
      loadedAt: catalogSource.loadedAt,
      lastRefused: refusalForHealth(catalogSource.lastRefused),
    },
    audit: {
      lastCheckpoint: checkpoints.last ? { at: checkpoints.last.at, count: checkpoints.last.count } : null,
      problem: auditTail.problem ?? null,
      checkpointFailure: refusalForHealth(checkpoints.lastFailure),
    },
  });
  app.get('/healthz', async (_request, reply) => reply.header('cache-control', 'no-store').send(health()));
  app.get('/readyz', async (_request, reply) => {
    const ready = !closing;
    return reply
      .code(ready ? 200 : 503)
      .header('cache-control', 'no-store')
      .send({ ready, ...health() });
  });

  app.get('/.well-known/jwks.json', async (_request, reply) =>
    reply.header('cache-control', 'max-age=300').send(keys.jwks()),
  );

  app.get('/metrics', async (request, reply) => {
    if (options.metricsToken !== undefined) {
      const header = request.headers.authorization ?? '';
      const presented = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '');
      const expected = Buffer.from(options.metricsToken);
      if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
        throw new AuthError('invalid_token', 'GET /metrics needs "Authorization: Bearer <metrics token>"', 'Bearer');
      }
    }
    const text = await metrics.render();
    return reply.header('cache-control', 'no-store').type(metrics.contentType).send(text);
  });

  registerAttestationRoute(app, {
    identify: async (request) => ({ userId: (await auth.identityFromBearer(request)).identity.userId }),
    trust,
    audit,
  });

  app.post('/v1/device/challenge', async (request, reply) => {
    const { identity: who } = await auth.identityFromBearer(request);
    const challenge = await challenges.issue(who.userId);
    return reply
      .header('cache-control', 'no-store')
      .send({ nonce: challenge.nonce, expires_in: challenge.expiresAt - Math.floor(Date.now() / 1000) });
  });

  app.post('/v1/session', async (request, reply) => {
    const { identity: who } = await auth.identityFromBearer(request);
    if (who.expiresAt - Date.now() / 1000 < 10) {
      throw new AuthError(
        'invalid_token',
        'Identity token expires too soon to start a session; refresh it first',
        'Bearer',
      );
    }
    const proof = await dpop.verify(request.headers.dpop, { method: 'POST', urls: auth.targetUrls(request) });
    const body = z
      .object({ posture: z.string().min(1), attestation: z.unknown().optional(), session_key: z.unknown().optional() })
      .safeParse(request.body);
    if (!body.success) {
      throw new PostureError(
        'the body must be {"posture": "<compact JWS>", "attestation"?: {…}, "session_key"?: "<compact JWS>"}',
      );
    }
    // The posture report and the DPoP proof are signed by one key: the device key, or the session key.
    const report = await verifyPostureReport(body.data.posture, proof.jwk, proof.jkt);
    if (!(await challenges.consume(report.nonce, who.userId))) {
      throw new PostureError('posture report nonce is unknown, already used, expired, or was issued to someone else');
    }
    // A session key certified by the device key (docs/protocol.md, "Session key"): the device is then
    // the certifying key, which this request's TPM attestation must prove; the token binds the session key.
    const sessionKey = await verifySessionKey(audit, who.userId, body.data.session_key, {
      nonce: report.nonce,
      proofJkt: proof.jkt,
    });
    const device = sessionKey ? { jwk: sessionKey.deviceJwk, jkt: sessionKey.deviceJkt } : proof;
    const existing = await devices.find(who.userId, device.jkt);
    if (existing?.revokedAt) {
      const refusal = await audit.append({
        kind: 'session',
        subject: who.userId,
        data: {
          effect: 'deny',
          reason: 'DEVICE_REVOKED',
          jkt: device.jkt,
          deviceId: existing.deviceId,
          revokedAt: existing.revokedAt,
        },
      });
      throw new ProblemError(
        problem(
          'device-revoked',
          403,
          'Device revoked',
          `This device key was revoked on ${existing.revokedAt}; IT can re-enable it.`,
          { decisionId: refusal.decisionId },
        ),
      );
    }
    // Only a key the gateway itself verified counts as hardware; the report's claim alone is refused.
    const tpm = await verifySessionAttestation(
      trust,
      audit,
      who.userId,
      report.nonce,
      body.data.attestation,
      device.jwk,
    );
    if (sessionKey && !tpm) await refuseUnattestedSessionKey(audit, who.userId);
    const assurance: DeviceAssurance = tpm ? 'hardware' : 'software';
    const certificate = trust.certificates ? await trust.certificates.verify(request.raw) : undefined;
    const managed = certificate?.verified;
    const deviceId = tpm ? `tpm-ek:${tpm.ekFingerprint}` : report.deviceId;
    await admitDevice(trust.policy, trust.enrolments, audit, {
      facts: {
        userId: who.userId,
        jkt: device.jkt,
        deviceId,
        ...(who.username ? { username: who.username } : {}),
        platform: report.platform,
        assurance,
        ...(tpm ? { ekFingerprint: tpm.ekFingerprint } : {}),
        ...(managed
          ? {
              managed: 'verified' as const,
              certificate: {
                subject: managed.subject,
                serial: managed.serial,
                fingerprint: managed.fingerprint,
                via: managed.via,
              },
            }
          : {}),
      },
      claimedAssurance: report.assurance,
      tpmVerified: tpm !== undefined,
      certificateVerified: managed !== undefined,
      ...(managed ? {} : { certificateDetail: certificate?.detail ?? 'this gateway trusts no device-certificate CA' }),
    });
    const verdict = deviceVerdict({ ...report, deviceId }, requiredChecks, assurance);
    await devices.enrol({
      userId: who.userId,
      jkt: device.jkt,
      deviceId,
      publicJwk: device.jwk,
      assurance: verdict.assurance,
      platform: report.platform,
      appVersion: report.appVersion,
      verdict,
      principal: {
        ...(who.name ? { name: who.name } : {}),
        ...(who.username ? { username: who.username } : {}),
        groups: who.groups,
      },
    });
    const sessionId = randomUUID();
    const { token, claims } = await sessionTokens.issue(
      {
        sub: who.userId,
        sid: sessionId,
        ...(who.clientId ? { client_id: who.clientId } : {}),
        ...(who.name ? { name: who.name } : {}),
        ...(who.username ? { preferred_username: who.username } : {}),
        groups: [...who.groups],
        cnf: { jkt: proof.jkt },
        device_jkt: device.jkt,
        device: {
          id: verdict.id,
          assurance: verdict.assurance,
          compliant: verdict.compliant,
          failedChecks: verdict.failedChecks,
        },
      },
      Math.min(who.expiresAt, sessionKey?.exp ?? Number.POSITIVE_INFINITY),
    );
    const record = await audit.append({
      kind: 'session',
      subject: who.userId,
      data: {
        sessionId,
        username: who.username,
        deviceId: verdict.id,
        jkt: device.jkt,
        ...(sessionKey ? { sessionJkt: sessionKey.sessionJkt } : {}),
        assurance: verdict.assurance,
        compliant: verdict.compliant,
        failedChecks: verdict.failedChecks,
        platform: report.platform,
        appVersion: report.appVersion,
        expiresAt: claims.exp,
      },
    });
    access.track({
      sessionId,
      userId: who.userId,
      jkt: device.jkt,
      identity: {
        ...(who.name ? { name: who.name } : {}),
        ...(who.username ? { username: who.username } : {}),
        groups: who.groups,
      },
      principal: principalFromGroups(who.groups, claimMapping),
      device: claims.device,
      expiresAt: claims.exp,
    });
    return reply.header('cache-control', 'no-store').send({
      access_token: token,
      token_type: 'DPoP',
      expires_in: Math.min(SESSION_TOKEN_LIFETIME_SECONDS, claims.exp - claims.iat),
      session_id: sessionId,
      decision_id: record.decisionId,
      device: verdict,
    });
  });

  app.get('/v1/entitlements', async (request, reply) => {
    const { session } = await auth.sessionFromDpop(request);
    access.track(session);
    const content = await access.entitlements(session);
    const { jws, document } = await signer.sign(content);
    await audit.append({
      kind: 'entitlements',
      subject: session.userId,
      data: {
        ver: document.ver,
        sessionId: session.sessionId,
        deviceId: session.device.id,
        policyRevision: policy.revision,
        catalogRevision: catalog.revision,
        models: document.models.map((m) => ({ id: m.id, status: m.status, reason: m.reason, policy: m.policy })),
      },
    });
    return reply.header('cache-control', 'no-store').type('application/jwt').send(jws);
  });

  const modelObject = (model: CatalogModel, outcome: ModelOutcome) => ({
    id: model.id,
    object: 'model',
    created: 0,
    owned_by: model.demo ? 'clearance-demo' : 'clearance',
    name: model.name,
    demo: model.demo,
    /** The request parameters it honours besides model, messages and stream; any other is refused with a 400. */
    parameters: modelParameters(model.upstream.kind, model.parameters),
    ...outcome,
  });

  app.get('/v1/models', async (request, reply) => {
    const { session } = await auth.sessionFromDpop(request);
    access.track(session);
    const data = catalog.models
      .map((model) => access.decide(session, model))
      .filter((decided) => decided.decision.effect === 'allow')
      .map((decided) => modelObject(decided.model, decided.outcome));
    return reply.header('cache-control', 'no-store').send({ object: 'list', data });
  });

  app.get('/v1/models/:id', async (request, reply) => {
    const { session } = await auth.sessionFromDpop(request);
    access.track(session);
    const { id } = request.params as { id: string };
    const model = catalog.get(id);
    const decided = model ? access.decide(session, model) : undefined;
    // A hidden model answers exactly like one that does not exist, so the answer reveals nothing.
    if (!decided || decided.outcome.status === 'hidden') {
      throw new ProblemError(problem('model-not-found', 404, 'Model not found', `There is no model "${id}".`));
    }
    return reply.header('cache-control', 'no-store').send(modelObject(decided.model, decided.outcome));
  });

  app.get('/v1/events', async (request, reply) => {
    const { session } = await auth.sessionFromDpop(request);
    access.track(session);
    const lastEventId = headerValue(request, 'last-event-id');
    reply.hijack();
    const res = reply.raw;
    res.on('error', (error) => log(`event stream for ${session.userId} failed: ${error.message}`));
    const observation = currentRequest();
    res.writeHead(200, {
      ...SSE_HEADERS,
      ...(observation
        ? { 'server-timing': serverTiming(observation), [REQUEST_ID_HEADER]: observation.requestId }
        : {}),
    });
    res.write(`retry: 3000\n${formatSseComment('connected')}`);
    metrics.streamDelta(1);
    const subscription = events.subscribe(
      session.userId,
      session.jkt,
      { write: (text) => res.write(text), close: () => res.end() },
      lastEventId,
    );
    const heartbeat = setInterval(() => res.write(formatSseComment('heartbeat')), heartbeatMs);
    const expiry = setTimeout(
      () => res.end(formatSseComment('access token expired; reconnect with a fresh token and Last-Event-ID')),
      Math.max(0, session.expiresAt * 1000 - Date.now()),
    );
    res.on('close', () => {
      metrics.streamDelta(-1);
      clearInterval(heartbeat);
      clearTimeout(expiry);
      subscription.dispose();
    });
    if (!lastEventId || subscription.needsResync) {
      try {
        const { ver } = await access.entitlements(session);
        events.publish(session.userId, { type: 'entitlements.changed', data: { ver } }, session.jkt);
      } catch (error) {
        log(`cannot send the current ver to ${session.userId}: ${(error as Error).message}`);
        res.end();
      }
    }
  });

  registerCompletionsRoute(app, {
    auth,
    access,
    catalog: () => catalog,
    upstreams: {
      demoTokensPerSecond: options.demoTokensPerSecond ?? 40,
      transport: {
        timeouts: { ...DEFAULT_UPSTREAM_TIMEOUTS, ...options.upstreamTimeouts },
        maxEventBytes: options.maxUpstreamEventBytes ?? DEFAULT_MAX_UPSTREAM_EVENT_BYTES,
        dispatcher: upstreamDispatcher,
      },
      env: options.env ?? process.env,
    },
    log,
  });

  const requireAdmin = (request: FastifyRequest) => {
    const header = request.headers.authorization ?? '';
    const presented = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '');
    const expected = Buffer.from(adminToken);
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
      throw new AuthError('invalid_token', 'Admin endpoints need "Authorization: Bearer <admin token>"', 'Bearer');
    }
  };

  app.get('/v1/admin/explain', async (request, reply) => {
    requireAdmin(request);
    const query = z
      .object({
        user: z.string().min(1),
        model: z.string().min(1),
        device: z.string().min(1).optional(),
        actor: Actor,
      })
      .safeParse(request.query);
    if (!query.success)
      throw new ProblemError(
        problem(
          'bad-request',
          400,
          'Invalid request',
          'Give ?user=<id or username>&model=<id>[&device=<key thumbprint>]',
        ),
      );
    const model = catalog.get(query.data.model);
    if (!model)
      throw new ProblemError(
        problem('model-not-found', 404, 'Model not found', `There is no model "${query.data.model}".`),
      );
    const latest = await devices.latestForUser(query.data.user);
    const active = latest ? (await devices.listForUser(latest.userId)).filter((d) => !d.revokedAt) : [];
    const enrolment = query.data.device ? active.find((d) => d.jkt === query.data.device) : latest;
    if (latest && query.data.device && !enrolment) {
      throw new ProblemError(
        problem('not-found', 404, 'Device not found', `"${query.data.user}" has no active device with that key.`),
      );
    }
    if (!enrolment) {
      throw new ProblemError(
        problem(
          'not-found',
          404,
          'User not seen',
          `No attested device for "${query.data.user}": the user has to sign in once.`,
        ),
      );
    }
    const principal = principalFromGroups(enrolment.principal.groups, claimMapping);
    const device = {
      assurance: enrolment.verdict.assurance,
      compliant: enrolment.verdict.compliant,
      failedChecks: enrolment.verdict.failedChecks,
    };
    const trace = policy.explain({ userId: enrolment.userId, principal, device, model });
    // What each of the user's active devices really gets: the gateway decides per device.
    const perDevice = active.map((each) => {
      const state = {
        assurance: each.verdict.assurance,
        compliant: each.verdict.compliant,
        failedChecks: each.verdict.failedChecks,
      };
      const decision = policy.decide({
        userId: each.userId,
        principal: principalFromGroups(each.principal.groups, claimMapping),
        device: state,
        model,
      });
      return {
        id: each.deviceId,
        jkt: each.jkt,
        lastSeenAt: each.lastSeenAt,
        ...state,
        decision: { effect: decision.effect, reason: decision.reason, policy: decision.policy },
      };
    });
    const record = await audit.append({
      kind: 'admin',
      subject: enrolment.userId,
      data: {
        action: 'explain',
        actor: query.data.actor ?? ADMIN_ACTOR,
        credential: ADMIN_ACTOR,
        model: model.id,
        ...(query.data.device ? { device: query.data.device } : {}),
        decision: { effect: trace.decision.effect, reason: trace.decision.reason, policy: trace.decision.policy },
        devices: perDevice.map((each) => ({
          jkt: each.jkt,
          effect: each.decision.effect,
          reason: each.decision.reason,
        })),
        policyRevision: policy.revision,
      },
    });
    return reply.header('cache-control', 'no-store').send({
      decisionId: record.decisionId,
      devices: perDevice,
      user: { id: enrolment.userId, ...enrolment.principal },
      principal,
      device: { id: enrolment.deviceId, jkt: enrolment.jkt, lastSeenAt: enrolment.lastSeenAt, ...device },
      model: { id: model.id, name: model.name, attributes: model.attributes },
      decision: trace.decision,
      policies: trace.policies,
      precedence: trace.precedence,
      policyRevision: policy.revision,
      catalogRevision: catalog.revision,
    });
  });

  registerDeviceAdminRoutes(app, {
    requireAdmin,
    policy: trust.policy,
    enrolments: trust.enrolments,
    audit,
    revokeDevice: (userId, jkt, actor) => revokeDevice(userId, jkt, actor, 'POST /v1/admin/devices/retire'),
  });

  /**
   * The user id an admin call names: explain takes an id or a username, so suspend, resume and
   * revoke do too. A username known to the registry is mapped to its user's id (an exact id wins);
   * anything else is taken as an id, so a user who never signed in can still be suspended ahead.
   * Without this, suspending "avery@…" answered `suspended: true` and suspended nobody.
   */
  const resolveUserId = async (idOrUsername: string): Promise<string> => {
    const latest = await devices.latestForUser(idOrUsername);
    if (!latest || latest.userId === idOrUsername) return idOrUsername;
    return (await devices.listForUser(idOrUsername)).length > 0 ? idOrUsername : latest.userId;
  };
  app.post('/v1/admin/revoke', async (request, reply) => {
    requireAdmin(request);
    const body = z
      .object({ user: z.string().min(1), jkt: z.string().min(1).optional(), actor: Actor })
      .safeParse(request.body);
    if (!body.success)
      throw new ProblemError(
        problem(
          'bad-request',
          400,
          'Invalid request',
          'Body: {"user": "<id>", "jkt"?: "<thumbprint>", "actor"?: "<who is acting>"}',
        ),
      );
    const actor = body.data.actor ?? ADMIN_ACTOR;
    const user = await resolveUserId(body.data.user);
    const targets = body.data.jkt
      ? [body.data.jkt]
      : (await devices.listForUser(user)).filter((d) => !d.revokedAt).map((d) => d.jkt);
    const revoked: string[] = [];
    for (const jkt of targets) if (await revokeDevice(user, jkt, actor, 'POST /v1/admin/revoke')) revoked.push(jkt);
    return reply.header('cache-control', 'no-store').send({ revoked });
  });

  app.post('/v1/admin/policies/reload', async (request, reply) => {
    requireAdmin(request);
    const body = z
      .object({ acceptRemovals: z.boolean().default(false), actor: Actor })
      .strict()
      .safeParse(request.body ?? {});
    if (!body.success)
      throw new ProblemError(
        problem(
          'bad-request',
          400,
          'Invalid request',
          'Body: {"acceptRemovals"?: boolean, "actor"?: "<who is acting>"}',
        ),
      );
    const before = policy.revision;
    const result = await reloadPolicy({ acceptRemovals: body.data.acceptRemovals });
    await pendingChange;
    await audit.append({
      kind: 'admin',
      data: {
        action: 'policies.reload',
        actor: body.data.actor ?? ADMIN_ACTOR,
        credential: ADMIN_ACTOR,
        acceptRemovals: body.data.acceptRemovals,
        ok: result.ok,
        ...(result.ok ? { revision: result.revision, previousRevision: before } : { error: result.error }),
      },
    });
    if (!result.ok) {
      throw new ProblemError(problem('bad-request', 409, 'Policy set refused', result.error));
    }
    return reply.header('cache-control', 'no-store').send({ revision: result.revision, policies: result.count });
  });

  const UserPath = z.object({ id: z.string().min(1).max(256) });
  app.post('/v1/admin/users/:id/suspend', async (request, reply) => {
    requireAdmin(request);
    const id = await resolveUserId(UserPath.parse(request.params).id);
    const body = z
      .object({ reason: z.string().max(500).optional(), actor: Actor })
      .strict()
      .safeParse(request.body ?? {});
    if (!body.success)
      throw new ProblemError(
        problem(
          'bad-request',
          400,
          'Invalid request',
          'Body: {"reason"?: "<why, for the audit>", "actor"?: "<who is acting>"}',
        ),
      );
    const actor = body.data.actor ?? ADMIN_ACTOR;
    const changed = await suspensions.suspend(id, actor, body.data.reason);
    const record = await audit.append({
      kind: 'admin',
      subject: id,
      data: {
        action: 'users.suspend',
        actor,
        credential: ADMIN_ACTOR,
        changed,
        ...(body.data.reason ? { reason: body.data.reason } : {}),
      },
    });
    const suspension = (await suspensions.find(id))!;
    auth.forgetUser(id);
    const cut = access.endUser(
      id,
      suspendedProblem(suspension, record.decisionId),
      SESSION_REVOKED_REASON.accountSuspended,
    );
    if (options.bus) {
      metrics.fannedOut('suspension', 'local');
      await options.bus
        .publish({ kind: 'suspension', userId: id, decisionId: record.decisionId })
        .catch((error: unknown) => log(`fanning out a suspension failed: ${(error as Error).message}`));
    }
    log(`user ${id} suspended by ${actor}; ${cut} completion(s) cut`);
    return reply
      .header('cache-control', 'no-store')
      .send({ user: id, suspended: true, changed, decisionId: record.decisionId });
  });
  app.post('/v1/admin/users/:id/resume', async (request, reply) => {
    requireAdmin(request);
    const id = await resolveUserId(UserPath.parse(request.params).id);
    const body = z
      .object({ actor: Actor })
      .strict()
      .safeParse(request.body ?? {});
    if (!body.success)
      throw new ProblemError(problem('bad-request', 400, 'Invalid request', 'Body: {"actor"?: "<who is acting>"}'));
    const actor = body.data.actor ?? ADMIN_ACTOR;
    const changed = await suspensions.resume(id);
    const record = await audit.append({
      kind: 'admin',
      subject: id,
      data: { action: 'users.resume', actor, credential: ADMIN_ACTOR, changed },
    });
    if (options.bus) {
      metrics.fannedOut('resumption', 'local');
      await options.bus
        .publish({ kind: 'resumption', userId: id })
        .catch((error: unknown) => log(`fanning out a resumption failed: ${(error as Error).message}`));
    }
    log(`user ${id} resumed by ${actor}`);
    return reply
      .header('cache-control', 'no-store')
      .send({ user: id, suspended: false, changed, decisionId: record.decisionId });
  });

  const revokeDevice = async (userId: string, jkt: string, actor = 'gateway-api', via?: string): Promise<boolean> => {
    const changed = await devices.revoke(userId, jkt);
    auth.forgetDevice(userId, jkt);
    if (!changed) return false;
    const detail = 'This device was revoked by IT; sign in again or contact IT.';
    await audit.append({
      kind: 'revocation',
      subject: userId,
      data: { jkt, actor, ...(via ? { via, credential: ADMIN_ACTOR } : {}) },
    });
    access.revokeDevice(userId, jkt, detail);
    if (options.bus) {
      metrics.fannedOut('revocation', 'local');
      await options.bus
        .publish({ kind: 'revocation', userId, jkt, detail })
        .catch((error: unknown) => log(`fanning out a revocation failed: ${(error as Error).message}`));
    }
    return true;
  };

  /** Applies a change another instance made (its stores are already updated). */
  const applyRemoteChange = (change: ClusterChange): void => {
    metrics.fannedOut(change.kind, 'remote');
    switch (change.kind) {
      case 'revocation':
        auth.forgetDevice(change.userId, change.jkt);
        access.revokeDevice(change.userId, change.jkt, change.detail);
        break;
      case 'suspension':
        suspensions.forget(change.userId);
        auth.forgetUser(change.userId);
        void suspensions
          .find(change.userId)
          .then((suspension) => {
            if (suspension) {
              access.endUser(
                change.userId,
                suspendedProblem(suspension, change.decisionId),
                SESSION_REVOKED_REASON.accountSuspended,
              );
            }
          })
          .catch((error: unknown) => log(`applying a remote suspension failed: ${(error as Error).message}`));
        break;
      case 'resumption':
        suspensions.forget(change.userId);
        break;
      case 'policy':
        if (change.digest !== policy.digest) void reloadPolicy();
        break;
      case 'catalog':
        void reloadCatalog();
        break;
    }
  };
  if (options.bus) subscriptions.push(options.bus.subscribe(applyRemoteChange));

  await app.ready();
  const requestLog = options.requestLog;
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const requestId = requestIdFor(req.headers[REQUEST_ID_HEADER]);
    observeRequest(requestId, () => {
      const observation = currentRequest()!;
      res.once('close', () => {
        const durationMs = performance.now() - observation.startedAt;
        const route = observation.route ?? 'unmatched';
        const method = req.method ?? 'GET';
        const decision = observation.decision ?? 'none';
        metrics.request(route, method, res.statusCode, decision, durationMs / 1000);
        if (observation.upstreamOutcome !== undefined && observation.phases.upstream !== undefined) {
          metrics.upstreamFirstByte(observation.upstreamOutcome, observation.phases.upstream / 1000);
        }
        requestLog?.({
          time: new Date().toISOString(),
          requestId,
          method,
          route,
          status: res.statusCode,
          decision,
          durationMs: Math.round(durationMs * 1000) / 1000,
          phases: { ...observation.phases },
        });
      });
      handler!(req, res);
    });
  });
  log(`gateway listening on ${url} (policy revision ${policy.revision}, catalog ${catalog.revision})`);

  return {
    url,
    adminToken,
    policy,
    audit,
    devices,
    access,
    events,
    metrics,
    auth,
    catalog: () => catalog,
    reloadPolicies: async (reloadOptions?: PolicyReloadOptions) => {
      const result = await reloadPolicy(reloadOptions);
      await pendingChange;
      return result;
    },
    reloadCatalog,
    revokeDevice,
    close: async () => {
      if (closing) return;
      closing = true;
      for (const subscription of subscriptions) subscription.dispose();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await app.close();
      await upstreamDispatcher.destroy();
      await pendingChange;
      await policy.close();
      await checkpoints.close();
      trust.close();
      database?.close();
    },
  };
}

/** Who an act done with the admin token is attributed to in the audit log when no `actor` is given. */
const ADMIN_ACTOR = 'admin-token';
/** The person acting with the admin token, as the caller names them (recorded in the audit log). */
const Actor = z.string().trim().min(1).max(200).optional();

/** The 403 every call of a suspended account gets. */
function suspendedProblem(suspension: UserSuspension, decisionId: string): ProblemDetails {
  const since = suspension.suspendedAt.slice(0, 10);
  return problem(
    'account-suspended',
    403,
    'Account suspended',
    `IT suspended this account on ${since}; every model, session and new device is refused until IT resumes it.`,
    {
      reason: 'ACCOUNT_SUSPENDED',
      decisionId,
      message: 'Your account is suspended. Contact IT to have it resumed.',
    },
  );
}

/** Paths load balancers and clients poll; never counted against an address. */
const UNLIMITED_PATHS = new Set([
  '/healthz',
  '/readyz',
  '/metrics',
  '/.well-known/clearance',
  '/.well-known/jwks.json',
]);
const COMPLETIONS_PATH = '/v1/chat/completions';

function refusalForHealth(refused: { readonly at: string; readonly reason: string } | undefined) {
  return refused ? { at: refused.at, reason: refused.reason } : null;
}

/** A request id as the caller sent it when well-formed (1–128 of `A-Za-z0-9._:-`), else a new one. */
export function requestIdFor(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header;
  return value !== undefined && /^[A-Za-z0-9._:-]{1,128}$/.test(value) ? value : `req_${randomHex(12)}`;
}

function headerValue(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function loadOrCreateAdminToken(path: string): string {
  if (existsSync(path)) {
    const token = readFileSync(path, 'utf8').trim();
    if (token.length >= 32) return token;
  }
  const token = randomBytes(32).toString('base64url');
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  return token;
}
