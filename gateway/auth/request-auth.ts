import type { IncomingHttpHeaders } from 'node:http';
import type { ActiveSession } from '../access';
import { principalFromGroups } from '../access';
import type { DeviceRegistry } from '../store/device-registry';
import type { DpopVerifier, VerifiedDpopProof } from './dpop';
import { AuthError } from './errors';
import type { ClaimMapping, IdentityTokenVerifier, VerifiedIdentity } from './identity-token';
import type { SessionTokenClaims, SessionTokens } from './session-token';

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

  constructor(
    private readonly identity: IdentityTokenVerifier,
    private readonly sessionTokens: SessionTokens,
    private readonly dpop: DpopVerifier,
    private readonly devices: DeviceRegistry,
    private readonly claimMapping: ClaimMapping,
    /** Public origins of the gateway (`https://host:port`); `htu` must name one of them. */
    private readonly origins: () => readonly string[],
    private readonly afterAuthentication: AfterAuthentication = async () => {},
  ) {}

  /** The URIs a proof for this request may name in `htu`. */
  targetUrls(request: RequestLike): string[] {
    const path = request.url.split(/[?#]/, 1)[0] ?? '/';
    return this.origins().map((origin) => `${origin}${path}`);
  }

  /** Verifies `Authorization: Bearer <identity-provider token>`. */
  async identityFromBearer(request: RequestLike): Promise<{ identity: VerifiedIdentity; token: string }> {
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
      pending = this.verifySession(request);
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
    });
    const enrolment = await this.devices.find(claims.sub, proof.jkt);
    if (!enrolment) throw new AuthError('invalid_token', 'The device key of this token is not enrolled');
    if (enrolment.revokedAt) throw new AuthError('invalid_token', 'The device key of this token has been revoked');
    const identity = {
      ...(claims.name ? { name: claims.name } : {}),
      ...(claims.preferred_username ? { username: claims.preferred_username } : {}),
      groups: claims.groups,
    };
    const session: ActiveSession = {
      sessionId: claims.sid,
      userId: claims.sub,
      jkt: claims.cnf.jkt,
      identity,
      principal: principalFromGroups(claims.groups, this.claimMapping),
      device: claims.device,
      expiresAt: claims.exp,
    };
    await this.afterAuthentication(request, { userId: session.userId, jkt: session.jkt });
    return { session, claims, proof };
  }
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
