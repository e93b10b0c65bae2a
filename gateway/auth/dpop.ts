import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { calculateJwkThumbprint, decodeProtectedHeader, importJWK, jwtVerify, type JWK } from 'jose';
import { QuotaExceeded } from '../limits/quotas';
import { AuthError } from './errors';
import { describeJoseError } from './identity-token';

/** Signature algorithms accepted for DPoP proofs, posture reports and device keys. */
export const DEVICE_KEY_ALGORITHMS = ['ES256', 'EdDSA'] as const;

/** What one request expects of its DPoP proof. */
export interface DpopExpectations {
  readonly method: string;
  /** The acceptable target URIs (the gateway's public origins + the request path). */
  readonly urls: readonly string[];
  /** The access token presented with the proof; its hash must be the proof's `ath`. */
  readonly accessToken?: string;
  /** The `cnf.jkt` of that token; the proof's key must have this thumbprint. */
  readonly boundJkt?: string;
}

/** A proof that passed every check. */
export interface VerifiedDpopProof {
  readonly jkt: string;
  readonly jwk: JWK;
  readonly jti: string;
  readonly iat: number;
}

/** Options for `DpopVerifier`. */
export interface DpopOptions {
  /** How old (by `iat`) a proof may be, and how long its `jti` is remembered. Default 60 s. */
  readonly maxAgeSeconds?: number;
  /** How far in the future `iat` may be. Default 5 s. */
  readonly clockToleranceSeconds?: number;
  /** Demand a server nonce (RFC 9449 §8) in every proof. Default false. */
  readonly requireNonce?: boolean;
  /** How long one nonce stays valid; the previous one is also accepted. Default 120 s. */
  readonly nonceLifetimeSeconds?: number;
  /** Most `jti`s remembered at once; beyond it new proofs are refused until old ones age out. */
  readonly replayCacheSize?: number;
  /** Most `jti`s remembered for one device key; beyond it that key alone gets 429. Default 1000. */
  readonly replayEntriesPerKey?: number;
  /** Where proof ids are remembered; default one in memory sized by the two options above. */
  readonly replay?: DpopReplayCache;
  readonly clock?: () => number;
}

/** What the replay cache says about a proof id. */
export type ReplayVerdict = 'fresh' | 'replay' | 'key-full' | 'full';

/**
 * Remembers DPoP proof ids (per device key) until they are too old to pass the age check.
 *
 * Bounded per device key, so one key that floods the gateway is refused alone; asynchronous
 * so a shared store (Redis) can stand in when several gateway instances run.
 */
export interface DpopReplayCache {
  /** Records `jti` for `jkt` until `expiresAt` (unix seconds) unless it was seen or a bound is reached. */
  remember(jkt: string, jti: string, expiresAt: number, now: number): Promise<ReplayVerdict>;
}

/** The replay cache of a single gateway instance. */
export class InMemoryDpopReplayCache implements DpopReplayCache {
  private readonly byKey = new Map<string, Map<string, number>>();
  private size = 0;
  private lastSweep = 0;

  constructor(
    private readonly maxEntries = 100_000,
    private readonly maxPerKey = 1000,
  ) {}

  async remember(jkt: string, jti: string, expiresAt: number, now: number): Promise<ReplayVerdict> {
    if (now - this.lastSweep >= 10 || this.size >= this.maxEntries) this.sweep(now);
    let seen = this.byKey.get(jkt);
    if (seen?.has(jti)) return 'replay';
    if (seen && seen.size >= this.maxPerKey) {
      this.sweepKey(jkt, seen, now);
      if (seen.size >= this.maxPerKey) return 'key-full';
    }
    if (this.size >= this.maxEntries) return 'full';
    if (!seen) {
      seen = new Map();
      this.byKey.set(jkt, seen);
    }
    seen.set(jti, expiresAt);
    this.size++;
    return 'fresh';
  }

  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [jkt, seen] of this.byKey) this.sweepKey(jkt, seen, now);
  }

  private sweepKey(jkt: string, seen: Map<string, number>, now: number): void {
    for (const [jti, expiresAt] of seen) {
      if (expiresAt < now) {
        seen.delete(jti);
        this.size--;
      }
    }
    if (seen.size === 0) this.byKey.delete(jkt);
  }
}

/**
 * Checks DPoP proofs as RFC 9449 §4.3 lists, with a `jti` replay cache and optional nonces.
 */
export class DpopVerifier {
  private readonly replay: DpopReplayCache;
  private readonly nonceSecret = randomBytes(32);
  private readonly maxAge: number;
  private readonly tolerance: number;
  private readonly nonceLifetime: number;
  private readonly clock: () => number;
  readonly requireNonce: boolean;

  constructor(options: DpopOptions = {}) {
    this.maxAge = options.maxAgeSeconds ?? 60;
    this.tolerance = options.clockToleranceSeconds ?? 5;
    this.requireNonce = options.requireNonce ?? false;
    this.nonceLifetime = options.nonceLifetimeSeconds ?? 120;
    this.replay =
      options.replay ?? new InMemoryDpopReplayCache(options.replayCacheSize ?? 100_000, options.replayEntriesPerKey);
    this.clock = options.clock ?? (() => Date.now() / 1000);
  }

  /** The nonce clients should put in their next proof (sent as `DPoP-Nonce`). */
  currentNonce(): string {
    return this.nonceForSlot(Math.floor(this.clock() / this.nonceLifetime));
  }

  /** Verifies the `DPoP` header of a request; throws `AuthError` naming the failed check. */
  async verify(header: string | readonly string[] | undefined, expected: DpopExpectations): Promise<VerifiedDpopProof> {
    // §4.3 (1): exactly one DPoP header. Node joins repeated headers with ", ".
    if (header === undefined || header === '') throw proofError('missing DPoP proof header');
    if (typeof header !== 'string' || header.includes(',')) throw proofError('more than one DPoP header');
    // §4.3 (2, 4, 5, 7): a JWT whose header names typ dpop+jwt, an allowed alg and a public jwk.
    let protectedHeader: ReturnType<typeof decodeProtectedHeader>;
    try {
      protectedHeader = decodeProtectedHeader(header);
    } catch {
      throw proofError('DPoP proof is not a JWT');
    }
    if (protectedHeader.typ !== 'dpop+jwt') throw proofError('DPoP proof typ must be "dpop+jwt"');
    const alg = protectedHeader.alg;
    if (!alg || !(DEVICE_KEY_ALGORITHMS as readonly string[]).includes(alg)) {
      throw proofError(`DPoP proof alg must be one of ${DEVICE_KEY_ALGORITHMS.join(', ')}`);
    }
    const jwk = protectedHeader.jwk;
    if (!jwk || typeof jwk !== 'object') throw proofError('DPoP proof has no jwk header');
    if ('d' in jwk || 'p' in jwk || 'q' in jwk || 'k' in jwk)
      throw proofError('DPoP proof jwk holds private key material');
    // §4.3 (6): the signature verifies with that key.
    let payload: Record<string, unknown>;
    try {
      const key = await importJWK(jwk, alg);
      const result = await jwtVerify(header, key, { algorithms: [alg], typ: 'dpop+jwt' });
      payload = result.payload;
    } catch (error) {
      throw proofError(`DPoP proof rejected: ${describeJoseError(error)}`);
    }
    // §4.3 (3): required claims.
    const { jti, htm, htu, iat, ath, nonce } = payload;
    if (typeof jti !== 'string' || jti.length < 16 || jti.length > 256)
      throw proofError('DPoP proof jti is missing or too short');
    if (typeof htm !== 'string') throw proofError('DPoP proof has no htm');
    if (typeof htu !== 'string') throw proofError('DPoP proof has no htu');
    if (typeof iat !== 'number' || !Number.isFinite(iat)) throw proofError('DPoP proof has no iat');
    // §4.3 (8, 9): method and target URI.
    if (htm !== expected.method.toUpperCase()) throw proofError(`DPoP proof is for ${htm}, not ${expected.method}`);
    const target = normalizeHtu(htu);
    if (!target || !expected.urls.some((url) => normalizeHtu(url) === target)) {
      throw proofError('DPoP proof htu does not match this request URI');
    }
    // §4.3 (10): server nonce.
    if (this.requireNonce && (typeof nonce !== 'string' || !this.isNonceValid(nonce))) {
      throw new AuthError('use_dpop_nonce', 'Authorization server requires nonce in DPoP proof');
    }
    // §4.3 (11): issued recently.
    const now = this.clock();
    if (iat > now + this.tolerance) throw proofError('DPoP proof iat is in the future');
    if (iat < now - this.maxAge) throw proofError('DPoP proof is too old');
    // §4.3 (12): bound to the presented access token.
    if (expected.accessToken !== undefined) {
      const expectedAth = createHash('sha256').update(expected.accessToken).digest('base64url');
      if (typeof ath !== 'string' || !safeEqual(ath, expectedAth))
        throw proofError('DPoP proof ath does not match the access token');
    } else if (ath !== undefined && typeof ath !== 'string') {
      throw proofError('DPoP proof ath is malformed');
    }
    const jkt = await calculateJwkThumbprint(jwk, 'sha256');
    if (expected.boundJkt !== undefined && !safeEqual(jkt, expected.boundJkt)) {
      throw new AuthError('invalid_token', 'DPoP proof key does not match the key the token is bound to (cnf.jkt)');
    }
    // Replay: remember (key, jti) until the proof could no longer pass the age check.
    const verdict = await this.replay.remember(jkt, jti, iat + this.maxAge + this.tolerance, now);
    if (verdict === 'replay') throw proofError('DPoP proof was already used (jti replay)');
    if (verdict === 'key-full') {
      throw new QuotaExceeded('device', 'Too many requests from this device key; retry shortly.', this.maxAge);
    }
    if (verdict === 'full') throw new QuotaExceeded('global', 'DPoP replay cache is full; retry shortly.', 5);
    return { jkt, jwk, jti, iat };
  }

  private isNonceValid(nonce: string): boolean {
    const slot = Math.floor(this.clock() / this.nonceLifetime);
    return safeEqual(nonce, this.nonceForSlot(slot)) || safeEqual(nonce, this.nonceForSlot(slot - 1));
  }

  private nonceForSlot(slot: number): string {
    return createHmac('sha256', this.nonceSecret).update(String(slot)).digest('base64url').slice(0, 32);
  }
}

/** The URI without query and fragment, normalized per RFC 3986 §6 (case, default port). */
function normalizeHtu(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
  return `${url.protocol}//${url.host}${url.pathname}`;
}

function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function proofError(detail: string): AuthError {
  return new AuthError('invalid_dpop_proof', detail);
}
