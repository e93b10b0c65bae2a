import { base64url, compactVerify, errors, importJWK, type JWK } from 'jose';
import { ENTITLEMENTS_AUDIENCE, ENTITLEMENTS_TYP, EntitlementDocument } from '../../shared/entitlements';
import { EntitlementError } from './errors';

/** The signature algorithms an entitlement document may use (RFC 8725 §3.1: an explicit allow-list). */
export const ENTITLEMENT_ALGORITHMS = ['ES256', 'EdDSA'] as const;
/** One of {@link ENTITLEMENT_ALGORITHMS}. */
export type EntitlementAlgorithm = (typeof ENTITLEMENT_ALGORITHMS)[number];

/**
 * Finds the public key a document names by `kid`.
 *
 * Only the `kid` (and the already allow-listed `alg`) reach the resolver: a `jku`, `x5u` or
 * embedded `jwk` in the header is never looked at.
 */
export type EntitlementKeyResolver = (kid: string, alg: EntitlementAlgorithm) => Promise<JWK>;

/** What a document must match to be accepted. */
export interface EntitlementVerifyOptions {
  readonly resolveKey: EntitlementKeyResolver;
  /** The gateway's issuer identifier. */
  readonly issuer: string;
  /** The signed-in user's subject. */
  readonly expectedSub: string;
  /** The RFC 7638 thumbprint of this installation's device key. */
  readonly expectedJkt: string;
  /** Milliseconds since the epoch, from the app's clock. */
  readonly now: number;
  /** The highest `ver` already accepted for this subject; a lower one is a replay. */
  readonly highestSeenVer?: number;
  /** Accept a document past `exp` (to show a cached one as stale); its signature is still checked. */
  readonly allowExpired?: boolean;
  /** Clock skew tolerated on `iat`, `nbf` and `exp`, in seconds (default 30). */
  readonly leewaySeconds?: number;
}

/** A document whose signature and claims have been checked. */
export interface VerifiedEntitlements {
  /** The compact JWS exactly as received, for the encrypted cache. */
  readonly jws: string;
  readonly document: EntitlementDocument;
  readonly kid: string;
  readonly alg: EntitlementAlgorithm;
}

const DEFAULT_LEEWAY_SECONDS = 30;
const BASE64URL_PART = /^[A-Za-z0-9_-]*$/;

function decodeJsonSegment(segment: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(base64url.decode(segment)));
  } catch (error) {
    throw new EntitlementError('MALFORMED', `The entitlement document's ${what} is not valid base64url JSON.`, {
      cause: error,
    });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new EntitlementError('MALFORMED', `The entitlement document's ${what} is not a JSON object.`);
  }
  return value as Record<string, unknown>;
}

function isEntitlementAlgorithm(alg: unknown): alg is EntitlementAlgorithm {
  return typeof alg === 'string' && (ENTITLEMENT_ALGORITHMS as readonly string[]).includes(alg);
}

/** RFC 7515 §4.1.9: a `typ` may drop its `application/` prefix and is compared case-insensitively. */
function normaliseTyp(typ: string): string {
  const lower = typ.toLowerCase();
  return lower.startsWith('application/') ? lower.slice('application/'.length) : lower;
}

/**
 * Checks that `jwk` is a public signing key of the kind `alg` needs.
 *
 * Stops the classic confusions: an RSA or symmetric key used for an ES256 token, a private key
 * published by mistake, a key meant for encryption.
 */
export function assertKeyFitsAlgorithm(jwk: JWK, alg: EntitlementAlgorithm): void {
  const name = jwk.kid ? `"${jwk.kid}"` : 'without a kid';
  const fits = alg === 'ES256' ? jwk.kty === 'EC' && jwk.crv === 'P-256' : jwk.kty === 'OKP' && jwk.crv === 'Ed25519';
  if (!fits) {
    throw new EntitlementError(
      'KEY_UNSUITABLE',
      `The gateway key ${name} (${jwk.kty ?? '?'} ${jwk.crv ?? ''}) cannot verify an ${alg} signature.`,
    );
  }
  if (jwk.alg !== undefined && jwk.alg !== alg) {
    throw new EntitlementError('KEY_UNSUITABLE', `The gateway key ${name} is for ${jwk.alg}, not ${alg}.`);
  }
  if (jwk.use !== undefined && jwk.use !== 'sig') {
    throw new EntitlementError('KEY_UNSUITABLE', `The gateway key ${name} is for "${jwk.use}", not signatures.`);
  }
  if (jwk.key_ops !== undefined && !jwk.key_ops.includes('verify')) {
    throw new EntitlementError('KEY_UNSUITABLE', `The gateway key ${name} may not be used to verify signatures.`);
  }
  if (jwk.d !== undefined) {
    throw new EntitlementError(
      'KEY_UNSUITABLE',
      `The gateway key ${name} is a private key; only public keys are trusted.`,
    );
  }
}

function describeIssues(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  const described = issues.slice(0, 5).map((issue) => {
    // Stryker disable next-line StringLiteral: '(document)' is unreachable: claims is always an object here and the schema has no top-level refinement, so every issue has a path.
    const path = issue.path.map(String).join('.') || '(document)';
    return `${path}: ${issue.message}`;
  });
  return described.join('; ');
}

/**
 * Verifies a compact entitlement JWS and returns its claims.
 *
 * Follows RFC 8725: `typ` must be `entitlements+jwt`, `alg` one of ES256 / EdDSA and fitting the key,
 * the key found by `kid` only; `iss`, `aud`, `exp` and `iat` are required. The document must name the
 * signed-in user and be bound to this device's key, and must not be older than one already seen.
 * Throws {@link EntitlementError} with a readable message otherwise.
 */
export async function verifyEntitlementDocument(
  jws: string,
  options: EntitlementVerifyOptions,
): Promise<VerifiedEntitlements> {
  const token = jws.trim();
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((part) => BASE64URL_PART.test(part)) || !parts[0] || !parts[1]) {
    throw new EntitlementError(
      'MALFORMED',
      'The gateway did not send an entitlement document in compact JWS form (three base64url parts).',
    );
  }
  // Stryker disable next-line StringLiteral: the defaults are unreachable, parts has exactly three non-empty-checked entries.
  const [headerPart = '', payloadPart = ''] = parts;
  const header = decodeJsonSegment(headerPart, 'header');

  if (typeof header.typ !== 'string' || normaliseTyp(header.typ) !== ENTITLEMENTS_TYP) {
    throw new EntitlementError(
      'TYPE',
      `The signed token is a "${String(header.typ ?? 'untyped')}" token, not an entitlement document (${ENTITLEMENTS_TYP}).`,
    );
  }
  if (!isEntitlementAlgorithm(header.alg)) {
    throw new EntitlementError(
      'ALGORITHM',
      `The entitlement document is signed with "${String(header.alg)}", which is not allowed (only ${ENTITLEMENT_ALGORITHMS.join(', ')}).`,
    );
  }
  const alg = header.alg;
  if (header.crit !== undefined || header.b64 !== undefined) {
    throw new EntitlementError(
      'MALFORMED',
      'The entitlement document uses JWS extensions (crit / b64) that are not allowed.',
    );
  }
  if (typeof header.kid !== 'string' || header.kid.length === 0) {
    throw new EntitlementError('KEY_UNKNOWN', 'The entitlement document does not name its signing key (no kid).');
  }
  const kid = header.kid;

  const jwk = await options.resolveKey(kid, alg);
  assertKeyFitsAlgorithm(jwk, alg);
  let key: Awaited<ReturnType<typeof importJWK>>;
  try {
    key = await importJWK(jwk, alg);
  } catch (error) {
    throw new EntitlementError('KEY_UNSUITABLE', `The gateway key "${kid}" could not be imported for ${alg}.`, {
      cause: error,
    });
  }
  try {
    // Stryker disable next-line ObjectLiteral: alg is already allow-listed from this same header and the key is imported for it; the list is defence in depth.
    await compactVerify(token, key, { algorithms: [alg] });
  } catch (error) {
    if (error instanceof errors.JWSSignatureVerificationFailed) {
      throw new EntitlementError(
        'SIGNATURE',
        `The entitlement document's signature does not match the gateway key "${kid}": it was altered or not issued by this gateway.`,
        { cause: error },
      );
    }
    throw new EntitlementError(
      'MALFORMED',
      `The entitlement document could not be verified: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }

  const claims = decodeJsonSegment(payloadPart, 'payload');
  const leeway = options.leewaySeconds ?? DEFAULT_LEEWAY_SECONDS;
  const nowSeconds = options.now / 1000;

  if (claims.iss !== options.issuer) {
    throw new EntitlementError(
      'ISSUER',
      `The entitlement document was issued by "${String(claims.iss)}", not by this gateway ("${options.issuer}").`,
    );
  }
  if (claims.aud !== ENTITLEMENTS_AUDIENCE) {
    throw new EntitlementError(
      'AUDIENCE',
      `The entitlement document is meant for ${JSON.stringify(claims.aud)}, not for "${ENTITLEMENTS_AUDIENCE}".`,
    );
  }
  for (const claim of ['iat', 'exp'] as const) {
    if (typeof claims[claim] !== 'number' || !Number.isFinite(claims[claim])) {
      throw new EntitlementError('CLAIMS', `The entitlement document has no valid "${claim}" time.`);
    }
  }
  const iat = claims.iat as number;
  const exp = claims.exp as number;
  if (iat > nowSeconds + leeway) {
    throw new EntitlementError(
      'ISSUED_IN_FUTURE',
      `The entitlement document was issued at ${new Date(iat * 1000).toISOString()}, after this computer's time; check the system clock.`,
    );
  }
  if (typeof claims.nbf === 'number' && claims.nbf > nowSeconds + leeway) {
    throw new EntitlementError(
      'ISSUED_IN_FUTURE',
      'The entitlement document is not valid yet; check the system clock.',
    );
  }
  if (exp <= iat) {
    throw new EntitlementError('CLAIMS', 'The entitlement document expires before it was issued.');
  }
  if (!options.allowExpired && exp + leeway <= nowSeconds) {
    throw new EntitlementError(
      'EXPIRED',
      `The entitlement document expired at ${new Date(exp * 1000).toISOString()}; check the system clock if this repeats.`,
    );
  }

  const parsed = EntitlementDocument.safeParse(claims);
  if (!parsed.success) {
    throw new EntitlementError(
      'CLAIMS',
      `The entitlement document does not have the expected shape: ${describeIssues(parsed.error.issues)}.`,
    );
  }
  const document = parsed.data;
  if (document.sub !== options.expectedSub) {
    throw new EntitlementError('SUBJECT', 'The entitlement document is for a different user than the one signed in.');
  }
  if (document.cnf.jkt !== options.expectedJkt) {
    throw new EntitlementError(
      'DEVICE_BINDING',
      "The entitlement document is bound to a different device key than this computer's.",
    );
  }
  if (options.highestSeenVer !== undefined && document.ver < options.highestSeenVer) {
    throw new EntitlementError(
      'VERSION_REPLAYED',
      `The entitlement document has version ${document.ver}, older than version ${options.highestSeenVer} already seen; an old document was replayed.`,
    );
  }
  return { jws: token, document, kid, alg };
}
