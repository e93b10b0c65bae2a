import type { IncomingHttpHeaders } from 'node:http';
import type { ActiveSession } from '../access';
import { principalFromGroups } from '../access';
import type { DeviceEnrolment, DeviceRegistry } from '../store/device-registry';
import { timePhaseAsync } from '../observability/context';
import type { DpopVerifier, VerifiedDpopProof } from './dpop';
import { AuthError } from './errors';
import type { ClaimMapping, IdentityTokenVerifier, VerifiedIdentity } from './identity-token';
import { deviceThumbprint, type SessionTokenClaims, type SessionTokens } from './session-token';

/** The parts of an HTTP request authentication looks at. */
export interface RequestLike {
  readonly method: string;
  /** Path and query, as received. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

/** A request that carried a valid gateway token and a matching DPoP proof. */
export interface AuthenticatedRequest {
  readonly session: ActiveSession;
  readonly claims: SessionTokenClaims;
  readonly proof: VerifiedDpopProof;
}

/** Called with each authenticated caller before the route runs (quotas, suspension). */
export type AfterAuthentication = (
  request: RequestLike,
  principal: { readonly userId: string; readonly jkt?: string },
) => Promise<void>;

/**
 * Authenticates gateway requests: identity-provider Bearer tokens for the device challenge and
 * session endpoints, DPoP-bound gateway tokens (RFC 9449) for everything else.
 */
export class RequestAuthenticator {
  private readonly verified = new WeakMap<RequestLike, Promise<AuthenticatedRequest>>();
  /** Device enrolments looked up recently, for `enrolmentTtlMs`; revocation drops them at once. */
  private readonly enrolments = new Map<string, { readonly enrolment: DeviceEnrolment; readonly until: number }>();
  /** The session built from each cached token's claims. */
  private readonly sessions = new WeakMap<SessionTokenClaims, ActiveSession>();

  constructor(
    private readonly identity: IdentityTokenVerifier,
    private readonly sessionTokens: SessionTokens,
    private readonly dpop: DpopVerifier,
    private readonly devices: DeviceRegistry,
    private readonly claimMapping: ClaimMapping,
    /** Public origins of the gateway (`https://host:port`); `htu` must name one of them. */
    private readonly origins: () => readonly string[],
    private readonly afterAuthentication: AfterAuthentication = async () => {},
    /** How long an enrolment lookup is reused; a safety net behind explicit invalidation. */
    private readonly enrolmentTtlMs = 5000,
  ) {}

  /** Enrolments held (for metrics). */
  get enrolmentCacheEntries(): number {
    return this.enrolments.size;
  }

  /** Drops what is cached about one device key of a user (call on revocation, here or elsewhere). */
  forgetDevice(userId: string, jkt: string): void {
    this.enrolments.delete(enrolmentKey(userId, jkt));
    this.sessionTokens.forgetDevice(userId, jkt);
  }

  /** Drops what is cached about a user (call on suspension, here or elsewhere). */
  forgetUser(userId: string): void {
    const prefix = enrolmentKey(userId, '');
    for (const key of this.enrolments.keys()) if (key.startsWith(prefix)) this.enrolments.delete(key);
    this.sessionTokens.forgetUser(userId);
  }

  private async enrolment(userId: string, jkt: string): Promise<DeviceEnrolment | undefined> {
    const key = enrolmentKey(userId, jkt);
    const now = Date.now();
    const hit = this.enrolments.get(key);
    if (hit && hit.until > now) return hit.enrolment;
    const enrolment = await this.devices.find(userId, jkt);
    if (enrolment && !enrolment.revokedAt && this.enrolmentTtlMs > 0) {
      if (this.enrolments.size >= 100_000) this.enrolments.clear();
      this.enrolments.set(key, { enrolment, until: now + this.enrolmentTtlMs });
    } else {
      this.enrolments.delete(key);
    }
    return enrolment;
  }

  /** The URIs a proof for this request may name in `htu`. */
  targetUrls(request: RequestLike): string[] {
    // Stryker disable next-line StringLiteral: split always returns at least one element, so the '/' fallback is never used (it only satisfies noUncheckedIndexedAccess)
    const path = request.url.split(/[?#]/, 1)[0] ?? '/';
    return this.origins().map((origin) => `${origin}${path}`);
  }

  /** Verifies `Authorization: Bearer <identity-provider token>`. */
  identityFromBearer(request: RequestLike): Promise<{ identity: VerifiedIdentity; token: string }> {
    return timePhaseAsync('auth', () => this.verifyBearer(request));
  }

  private async verifyBearer(request: RequestLike): Promise<{ identity: VerifiedIdentity; token: string }> {
    const { scheme, token } = parseAuthorization(request.headers.authorization, 'Bearer');
    if (scheme !== 'bearer') {
      throw new AuthError(
        'invalid_request',
        'This endpoint takes the identity provider access token as Bearer',
        'Bearer',
      );
    }
    const identity = await this.identity.verify(token);
    await this.afterAuthentication(request, { userId: identity.userId });
    return { identity, token };
  }

  /**
   * Verifies `Authorization: DPoP <gateway token>` and its `DPoP` proof.
   *
   * Once per request: a second call (the route after a hook that authenticated before reading
   * the body) returns the first outcome rather than seeing the proof as a replay.
   */
  sessionFromDpop(request: RequestLike): Promise<AuthenticatedRequest> {
    let pending = this.verified.get(request);
    if (!pending) {
      pending = timePhaseAsync('auth', () => this.verifySession(request));
      this.verified.set(request, pending);
    }
    return pending;
  }

  private async verifySession(request: RequestLike): Promise<AuthenticatedRequest> {
    const { scheme, token } = parseAuthorization(request.headers.authorization, 'DPoP');
    if (scheme === 'bearer') {
      // RFC 9449 §7.2: a DPoP-bound token must not be accepted as a bearer token.
      const claims = await this.sessionTokens.verify(token).catch(() => undefined);
      throw new AuthError(
        'invalid_token',
        claims
          ? 'This access token is DPoP-bound; send it as "Authorization: DPoP" with a DPoP proof, not as Bearer'
          : 'This endpoint takes a gateway access token with "Authorization: DPoP"',
      );
    }
    if (scheme !== 'dpop') throw new AuthError('invalid_request', 'Use "Authorization: DPoP <access token>"');
    const claims = await this.sessionTokens.verify(token);
    const proof = await this.dpop.verify(request.headers.dpop, {
      method: request.method,
      urls: this.targetUrls(request),
      accessToken: token,
      boundJkt: claims.cnf.jkt,
      replayScope: claims.sub,
    });
    // The device is the device key, also when a session key it certified signs the proofs.
    const enrolment = await this.enrolment(claims.sub, deviceThumbprint(claims));
    if (!enrolment) throw new AuthError('invalid_token', 'The device key of this token is not enrolled');
    if (enrolment.revokedAt) throw new AuthError('invalid_token', 'The device key of this token has been revoked');
    const known = this.sessions.get(claims);
    if (known) {
      await this.afterAuthentication(request, { userId: known.userId, jkt: known.jkt });
      return { session: known, claims, proof };
    }
    const identity = {
      ...(claims.name ? { name: claims.name } : {}),
      ...(claims.preferred_username ? { username: claims.preferred_username } : {}),
      groups: claims.groups,
    };
    const session: ActiveSession = {
      sessionId: claims.sid,
      userId: claims.sub,
      jkt: deviceThumbprint(claims),
      identity,
      principal: principalFromGroups(claims.groups, this.claimMapping),
      device: claims.device,
      expiresAt: claims.exp,
    };
    this.sessions.set(claims, session);
    await this.afterAuthentication(request, { userId: session.userId, jkt: session.jkt });
    return { session, claims, proof };
  }
}

function enrolmentKey(userId: string, jkt: string): string {
  return `${userId}\u0000${jkt}`;
}

function parseAuthorization(
  header: string | undefined,
  expected: 'Bearer' | 'DPoP',
): { scheme: string; token: string } {
  const scheme = expected === 'DPoP' ? 'DPoP' : 'Bearer';
  if (!header) throw new AuthError('invalid_request', `Missing "Authorization: ${expected} <token>"`, scheme);
  const match = /^([A-Za-z]+) +([A-Za-z0-9\-._~+/]+=*)$/.exec(header.trim());
  if (!match) throw new AuthError('invalid_request', 'Malformed Authorization header', scheme);
  return { scheme: (match[1] as string).toLowerCase(), token: match[2] as string };
}
