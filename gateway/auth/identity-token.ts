import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { createRemoteJWKSet, customFetch, errors, jwtVerify, type FetchImplementation, type JWTPayload } from 'jose';
import { AuthError } from './errors';

/**
 * A standards OIDC identity provider (the development provider, or any other).
 *
 * `caCertPem` is trusted for the JWKS fetch only (added to, never replacing, TLS
 * verification). `tokenType` is the required JWT `typ` header: `at+jwt` (RFC 9068) by
 * default; set `null` only for a provider that sends none.
 */
export interface OidcIdentityProviderSettings {
  readonly kind?: 'oidc';
  readonly issuer: string;
  readonly jwksUri: string;
  readonly audience: string | readonly string[];
  readonly caCertPem?: string;
  readonly algorithms?: readonly string[];
  readonly tokenType?: string | null;
  readonly fetch?: FetchImplementation;
}

/**
 * Microsoft Entra ID (production). Issuer, JWKS and algorithm follow from the tenant.
 *
 * Expects v2.0 access tokens (`accessTokenAcceptedVersion: 2` in the app manifest), `tid`
 * equal to `tenantId`, `aud` one of `audience` (the API's App ID URI and/or client id).
 */
export interface EntraIdentityProviderSettings {
  readonly kind: 'entra';
  readonly tenantId: string;
  readonly audience: string | readonly string[];
  /** Default `https://login.microsoftonline.com`; sovereign clouds use their own host. */
  readonly authorityHost?: string;
  readonly fetch?: FetchImplementation;
}

/** Which identity provider the gateway trusts. */
export type IdentityProviderSettings = OidcIdentityProviderSettings | EntraIdentityProviderSettings;

/**
 * How identity-token claims become Cedar principal attributes.
 *
 * US-person status is a group that HR maintains, not a location.
 */
export interface ClaimMapping {
  readonly groupsClaim: string;
  readonly usPersonGroup: string;
  readonly verificationPendingGroup: string;
  /** The stable user id: `sub` for OIDC, `oid` for Entra (its `sub` is pairwise per app). */
  readonly subjectClaim: string;
  readonly usernameClaim: string;
}

/** Claim mapping for the development provider. */
export const DEFAULT_CLAIM_MAPPING: ClaimMapping = {
  groupsClaim: 'groups',
  usPersonGroup: 'us-persons',
  verificationPendingGroup: 'us-person-verification-pending',
  subjectClaim: 'sub',
  usernameClaim: 'preferred_username',
};

/** The verified identity behind an identity-provider access token. */
export interface VerifiedIdentity {
  readonly userId: string;
  readonly name?: string;
  readonly username?: string;
  readonly groups: readonly string[];
  readonly clientId?: string;
  readonly expiresAt: number;
}

/** Leeway for `exp`, `nbf` and `iat` (RFC 8725 §3.10: small). */
const CLOCK_TOLERANCE_SECONDS = 30;

/** The refusal of a token whose `iat` is later than now plus the leeway. */
const iatInTheFuture = (): AuthError =>
  new AuthError('invalid_token', 'Identity token rejected: "iat" is in the future', 'Bearer');

/**
 * Verifies identity-provider access tokens per RFC 8725.
 *
 * Algorithms come from an allow-list, `typ` is checked, `iss` `aud` `exp` `iat` `sub` are
 * required, `iat` may not be in the future, and keys are looked up by `kid` in the
 * configured JWKS only (never from `jku`/`x5u`/`jwk` headers).
 */
export class IdentityTokenVerifier {
  private readonly jwks: ReturnType<typeof createRemoteJWKSet>;
  private readonly issuer: string;
  private readonly audience: string | string[];
  private readonly algorithms: string[];
  private readonly tokenType: string | null;
  private readonly tenantId: string | undefined;

  constructor(
    settings: IdentityProviderSettings,
    private readonly claims: ClaimMapping,
  ) {
    let jwksUri: string;
    let fetchImplementation: FetchImplementation | undefined = settings.fetch;
    if (settings.kind === 'entra') {
      const host = (settings.authorityHost ?? 'https://login.microsoftonline.com').replace(/\/+$/, '');
      this.issuer = `${host}/${settings.tenantId}/v2.0`;
      jwksUri = `${host}/${settings.tenantId}/discovery/v2.0/keys`;
      this.algorithms = ['RS256'];
      this.tokenType = 'JWT';
      this.tenantId = settings.tenantId;
    } else {
      this.issuer = settings.issuer;
      jwksUri = settings.jwksUri;
      this.algorithms = [...(settings.algorithms ?? ['ES256', 'EdDSA', 'RS256', 'PS256'])];
      this.tokenType = settings.tokenType === undefined ? 'at+jwt' : settings.tokenType;
      this.tenantId = undefined;
      if (!fetchImplementation && settings.caCertPem) fetchImplementation = fetchTrustingCa(settings.caCertPem);
    }
    for (const alg of this.algorithms) {
      if (alg === 'none' || alg.startsWith('HS')) throw new Error(`Identity token algorithm ${alg} is not allowed`);
    }
    this.audience = typeof settings.audience === 'string' ? settings.audience : [...settings.audience];
    this.jwks = createRemoteJWKSet(new URL(jwksUri), {
      timeoutDuration: 5000,
      cooldownDuration: 30_000,
      ...(fetchImplementation ? { [customFetch]: fetchImplementation } : {}),
    });
  }

  /** The issuer tokens must carry. */
  get expectedIssuer(): string {
    return this.issuer;
  }

  /** Verifies `token` and maps its claims; throws `AuthError` naming the failed check. */
  async verify(token: string): Promise<VerifiedIdentity> {
    let payload: JWTPayload;
    try {
      const result = await jwtVerify(token, this.jwks, {
        issuer: this.issuer,
        audience: this.audience,
        algorithms: this.algorithms,
        ...(this.tokenType ? { typ: this.tokenType } : {}),
        requiredClaims: ['iss', 'aud', 'exp', 'iat', 'sub'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
      });
      payload = result.payload;
    } catch (error) {
      throw new AuthError('invalid_token', `Identity token rejected: ${describeJoseError(error)}`, 'Bearer');
    }
    const now = Math.floor(Date.now() / 1000);
    // Stryker disable next-line ConditionalExpression: jose has already required `iat` (requiredClaims) and refused one that is not a number: never true here, it narrows the type
    if (typeof payload.iat !== 'number') throw iatInTheFuture();
    if (payload.iat > now + CLOCK_TOLERANCE_SECONDS) throw iatInTheFuture();
    if (this.tenantId !== undefined) {
      if (payload.tid !== this.tenantId)
        throw new AuthError('invalid_token', 'Identity token is from another tenant', 'Bearer');
      if (payload.ver !== '2.0')
        throw new AuthError('invalid_token', 'Identity token is not a v2.0 access token', 'Bearer');
    }
    const claimNames = payload._claim_names as Record<string, unknown> | undefined;
    if (claimNames && this.claims.groupsClaim in claimNames) {
      throw new AuthError(
        'invalid_token',
        'Identity token has too many groups to list (groups overage); assign only the relevant groups to the app',
        'Bearer',
      );
    }
    const userId = payload[this.claims.subjectClaim];
    if (typeof userId !== 'string' || userId.length === 0) {
      throw new AuthError('invalid_token', `Identity token has no "${this.claims.subjectClaim}" claim`, 'Bearer');
    }
    const rawGroups = payload[this.claims.groupsClaim] ?? [];
    if (!Array.isArray(rawGroups) || rawGroups.some((group) => typeof group !== 'string')) {
      throw new AuthError(
        'invalid_token',
        `Identity token's "${this.claims.groupsClaim}" is not a list of strings`,
        'Bearer',
      );
    }
    const name = typeof payload.name === 'string' ? payload.name : undefined;
    const username = payload[this.claims.usernameClaim];
    const clientId = typeof payload.client_id === 'string' ? payload.client_id : payload.azp;
    return {
      userId,
      ...(name ? { name } : {}),
      ...(typeof username === 'string' ? { username } : {}),
      groups: rawGroups as string[],
      ...(typeof clientId === 'string' ? { clientId } : {}),
      expiresAt: payload.exp as number,
    };
  }
}

/** Explains a jose verification failure in one line, without echoing the token. */
export function describeJoseError(error: unknown): string {
  if (error instanceof errors.JWTClaimValidationFailed) return `${error.message} (claim "${error.claim}")`;
  if (error instanceof errors.JWTExpired) return `token expired (${error.message})`;
  if (error instanceof errors.JOSEAlgNotAllowed) return `algorithm not allowed (${error.message})`;
  if (error instanceof errors.JWKSNoMatchingKey) return 'no key in the JWKS matches the token (kid/alg)';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'signature does not verify';
  if (error instanceof errors.JOSEError) return error.message;
  return error instanceof Error ? error.message : String(error);
}

/**
 * A fetch for jose's remote JWKS that trusts one extra CA (the development provider's).
 *
 * Certificate verification stays on; the CA is added for this connection only.
 */
export function fetchTrustingCa(caCertPem: string): FetchImplementation {
  return (url, options) =>
    new Promise<Response>((resolve, reject) => {
      const target = new URL(url);
      const requester = target.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = requester(
        target,
        {
          method: options.method,
          headers: Object.fromEntries(options.headers.entries()),
          // Stryker disable next-line ConditionalExpression: node:http ignores `ca` (a TLS option), so passing it for an http: URL changes nothing
          ...(target.protocol === 'https:' ? { ca: caCertPem } : {}),
          signal: options.signal,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const headers = new Headers();
            for (const [key, value] of Object.entries(res.headers)) {
              if (typeof value === 'string') headers.set(key, value);
            }
            resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 500, headers }));
          });
        },
      );
      req.on('error', reject);
      req.end();
    });
}
