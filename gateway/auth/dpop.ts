import {
  createHash,
  createHmac,
  createPublicKey,
  randomBytes,
  timingSafeEqual,
  verify,
  type KeyObject,
} from 'node:crypto';
import { joseToDer } from 'ecdsa-sig-formatter';
import { decodeProtectedHeader, type JWK } from 'jose';
import { QuotaExceeded } from '../limits/quotas';
import { AuthError } from './errors';

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
  /**
   * Whose share of the replay cache the proof counts against besides its key: the token's subject.
   * People sharing a laptop share its device key; one must not fill the other's share. A replay is
   * still caught: a proof names (`ath`) one token, and so one subject.
   */
  readonly replayScope?: string;
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
  /** Secret the nonces derive from; instances that share it accept each other's nonces. */
  readonly nonceSecret?: Buffer;
  /** Most device keys kept imported; default 50,000. */
  readonly keyCacheSize?: number;
  readonly clock?: () => number;
}

/** A device public key, imported once and kept with its RFC 7638 thumbprint. */
interface ImportedKey {
  readonly key: KeyObject;
  readonly jkt: string;
  readonly alg: (typeof DEVICE_KEY_ALGORITHMS)[number];
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
  /** Entries held now (for metrics); undefined when the store cannot tell cheaply. */
  size?(): number | undefined;
}

/**
 * The replay cache of a single gateway instance: two generations of per-key sets.
 *
 * A generation is dropped whole once every entry in it has expired (or at the second rotation),
 * instead of sweeping entry by entry, so the cache costs a set insert per proof and holds
 * hundreds of thousands of proofs (the old 100,000-entry map capped one process near 1,540
 * proofs/s). One key over its share is refused alone (`key-full`).
 */
export class InMemoryDpopReplayCache implements DpopReplayCache {
  private current = new Map<string, Set<string>>();
  private previous = new Map<string, Set<string>>();
  private currentCount = 0;
  private previousCount = 0;
  /** Latest `expiresAt` in each generation. */
  private currentExpiry = 0;
  private previousExpiry = 0;
  private rotateAt = 0;

  constructor(
    private readonly maxEntries = 1_000_000,
    private readonly maxPerKey = 1000,
    /** Rotation period: at least the longest time an entry must be kept (max age + tolerances). */
    private readonly windowSeconds = 70,
  ) {}

  async remember(jkt: string, jti: string, expiresAt: number, now: number): Promise<ReplayVerdict> {
    return this.rememberNow(jkt, jti, expiresAt, now);
  }

  /** The synchronous form of `remember`. */
  rememberNow(jkt: string, jti: string, expiresAt: number, now: number): ReplayVerdict {
    // Stryker disable next-line ArithmeticOperator,ConditionalExpression: a first rotation time in the past (or left at 0, for a clock past 0) rotates the still-empty cache at once, which sets the same `now + windowSeconds`
    if (this.rotateAt === 0) this.rotateAt = now + this.windowSeconds;
    // Strictly after the rotation time, so the next rotation (which drops this generation) comes strictly
    // after `rotateAt + windowSeconds`, the latest expiry this generation holds: an id is kept until
    // exactly its expiry, even one postponed to that bound or made just before a rotation.
    if (now > this.rotateAt) this.rotate(now);
    // The count guards only skip dropping a generation that is already empty (a count of 0 means an empty map),
    // so their mutants (`true`, `>= 0`) change nothing; the expiry tests beside them are proved.
    if (
      // Stryker disable next-line ConditionalExpression,EqualityOperator: dropping an empty generation changes nothing
      this.previousCount > 0 &&
      now > this.previousExpiry
    )
      this.dropPrevious();
    if (
      // Stryker disable next-line ConditionalExpression,EqualityOperator: dropping an empty generation changes nothing
      this.currentCount > 0 &&
      now > this.currentExpiry
    ) {
      this.current = new Map();
      this.currentCount = 0;
    }
    const newer = this.current.get(jkt);
    const older = this.previous.get(jkt);
    if (newer?.has(jti) || older?.has(jti)) return 'replay';
    if ((newer?.size ?? 0) + (older?.size ?? 0) >= this.maxPerKey) return 'key-full';
    if (this.currentCount + this.previousCount >= this.maxEntries) return 'full';
    // An entry must outlive its proof; one that would outlast both generations is kept longer by
    // postponing the next rotation.
    // Stryker disable next-line EqualityOperator: at equality `expiresAt - windowSeconds` is the rotation time it already has
    if (expiresAt > this.rotateAt + this.windowSeconds) this.rotateAt = expiresAt - this.windowSeconds;
    const set = newer ?? new Set<string>();
    // Stryker disable next-line ConditionalExpression: setting the key's own set again under its key changes nothing
    if (!newer) this.current.set(jkt, set);
    set.add(jti);
    this.currentCount++;
    // Stryker disable next-line EqualityOperator: at equality the latest expiry is set to the value it already has
    if (expiresAt > this.currentExpiry) this.currentExpiry = expiresAt;
    return 'fresh';
  }

  size(): number {
    return this.currentCount + this.previousCount;
  }

  /**
   * The current generation becomes the previous one. After an idle period everything it holds has
   * expired, and `rememberNow` drops it right after (`now > previousExpiry`); dropping it here at
   * `now >= rotateAt + windowSeconds` forgot an id whose expiry was exactly that second.
   */
  private rotate(now: number): void {
    this.previous = this.current;
    this.previousCount = this.currentCount;
    this.previousExpiry = this.currentExpiry;
    this.current = new Map();
    this.currentCount = 0;
    this.currentExpiry = 0;
    this.rotateAt = now + this.windowSeconds;
  }

  private dropPrevious(): void {
    this.previous = new Map();
    this.previousCount = 0;
    this.previousExpiry = 0;
  }
}

/**
 * Checks DPoP proofs as RFC 9449 §4.3 lists, with a `jti` replay cache and optional nonces.
 */
export class DpopVerifier {
  /** Where proof ids are remembered. */
  readonly replay: DpopReplayCache;
  private readonly keys = new Map<string, ImportedKey>();
  private readonly aths = new Map<string, string>();
  private readonly keyCacheSize: number;
  private readonly nonceSecret: Buffer;
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
      options.replay ??
      new InMemoryDpopReplayCache(
        options.replayCacheSize ?? 1_000_000,
        options.replayEntriesPerKey,
        this.maxAge + 2 * this.tolerance,
      );
    this.nonceSecret = options.nonceSecret ?? randomBytes(32);
    this.keyCacheSize = options.keyCacheSize ?? 50_000;
    this.clock = options.clock ?? (() => Date.now() / 1000);
  }

  /** Device keys held imported (for metrics). */
  get keyCacheEntries(): number {
    return this.keys.size;
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
    if (protectedHeader.crit !== undefined || 'b64' in protectedHeader)
      throw proofError('DPoP proof uses unsupported header parameters (crit/b64)');
    // §4.3 (6): the signature verifies with that key. The key is imported once per device key
    // and checked with node:crypto (no WebCrypto thread-pool round trip per proof).
    const imported = this.importKey(jwk as JWK, alg as ImportedKey['alg']);
    // Three segments (jose's decoding above also takes the five of a JWE) and a signature.
    const segments = header.split('.');
    if (segments.length !== 3 || !segments[2]) throw proofError('DPoP proof is not a JWT');
    const [encodedHeader, encodedPayload, encodedSignature] = segments as [string, string, string];
    const signature = Buffer.from(encodedSignature, 'base64url');
    const signed = Buffer.from(`${encodedHeader}.${encodedPayload}`);
    // ES256's JOSE form (r‖s) goes to OpenSSL as DER: ≈ 25 µs less per proof than `dsaEncoding: 'ieee-p1363'`.
    const valid =
      imported.alg === 'ES256'
        ? signature.length === 64 && verify('sha256', signed, imported.key, joseToDer(signature, 'ES256'))
        : verify(null, signed, imported.key, signature);
    if (!valid) throw proofError('DPoP proof rejected: signature does not verify');
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(encodedPayload, 'base64url').toString('utf8'));
    } catch {
      // Not JSON: `parsed` stays undefined and is refused below.
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
      throw proofError('DPoP proof rejected: the payload is not a JSON object');
    const payload = parsed as Record<string, unknown>;
    // The JWT claim types and times jose's jwtVerify checked, with its wording.
    for (const claim of ['iat', 'exp', 'nbf'] as const) {
      if (payload[claim] !== undefined && typeof payload[claim] !== 'number')
        throw proofError(`DPoP proof rejected: "${claim}" claim must be a number (claim "${claim}")`);
    }
    const nowForTimes = this.clock();
    if (typeof payload.exp === 'number' && payload.exp <= nowForTimes - this.tolerance)
      throw proofError('DPoP proof rejected: token expired ("exp")');
    if (typeof payload.nbf === 'number' && payload.nbf > nowForTimes + this.tolerance)
      throw proofError('DPoP proof rejected: not yet valid ("nbf")');
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
      const expectedAth = this.athOf(expected.accessToken);
      if (typeof ath !== 'string' || !safeEqual(ath, expectedAth))
        throw proofError('DPoP proof ath does not match the access token');
    } else if (ath !== undefined && typeof ath !== 'string') {
      throw proofError('DPoP proof ath is malformed');
    }
    const jkt = imported.jkt;
    if (expected.boundJkt !== undefined && !safeEqual(jkt, expected.boundJkt)) {
      throw new AuthError('invalid_token', 'DPoP proof key does not match the key the token is bound to (cnf.jkt)');
    }
    // Replay: remember (key, jti) until the proof could no longer pass the age check.
    const replayKey = expected.replayScope === undefined ? jkt : `${expected.replayScope}\u0000${jkt}`;
    const verdict = await this.replay.remember(replayKey, jti, iat + this.maxAge + this.tolerance, now);
    if (verdict === 'replay') throw proofError('DPoP proof was already used (jti replay)');
    if (verdict === 'key-full') {
      throw new QuotaExceeded('device', 'Too many requests from this device key; retry shortly.', this.maxAge);
    }
    if (verdict === 'full') throw new QuotaExceeded('global', 'DPoP replay cache is full; retry shortly.', 5);
    return { jkt, jwk: jwk as JWK, jti, iat };
  }

  /** The imported key and thumbprint for a proof's `jwk`, from the cache when seen before. */
  private importKey(jwk: JWK, alg: ImportedKey['alg']): ImportedKey {
    const members =
      jwk.kty === 'EC' && alg === 'ES256' && jwk.crv === 'P-256'
        ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
        : jwk.kty === 'OKP' && alg === 'EdDSA' && jwk.crv === 'Ed25519'
          ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x }
          : undefined;
    if (!members) throw proofError(`DPoP proof jwk is not a key for ${alg} (kty/crv)`);
    if (Object.values(members).some((value) => typeof value !== 'string'))
      throw proofError('DPoP proof jwk is malformed');
    // RFC 7638: the required members in lexicographic order, no whitespace; also the cache key.
    const canonical = JSON.stringify(members);
    const cached = this.keys.get(canonical);
    if (cached) return cached;
    let key: KeyObject;
    try {
      key = createPublicKey({ key: { ...members }, format: 'jwk' });
    } catch (error) {
      throw proofError(`DPoP proof jwk is not a valid public key (${(error as Error).message})`);
    }
    const imported: ImportedKey = { key, alg, jkt: createHash('sha256').update(canonical).digest('base64url') };
    if (this.keys.size >= this.keyCacheSize) {
      const oldest = this.keys.keys().next().value;
      // Stryker disable next-line ConditionalExpression: only a map of size 0 has no oldest key, and deleting `undefined` from it changes nothing
      if (oldest !== undefined) this.keys.delete(oldest);
    }
    this.keys.set(canonical, imported);
    return imported;
  }

  /** A token's `ath` (its SHA-256), remembered for the tokens seen lately: a client sends one token many times. */
  private athOf(token: string): string {
    let ath = this.aths.get(token);
    // Stryker disable next-line ConditionalExpression: hashing again when it is remembered gives the same ath (memory only)
    if (ath === undefined) {
      ath = createHash('sha256').update(token).digest('base64url');
      // Stryker disable next-line ConditionalExpression,EqualityOperator,BlockStatement: when the memory of hashes is emptied changes no answer, only memory
      if (this.aths.size >= 10_000) this.aths.clear();
      // Stryker disable next-line CallExpression: not remembering a hash only means hashing the token again (memory only)
      this.aths.set(token, ath);
    }
    return ath;
  }

  private isNonceValid(nonce: string): boolean {
    const slot = Math.floor(this.clock() / this.nonceLifetime);
    return safeEqual(nonce, this.nonceForSlot(slot)) || safeEqual(nonce, this.nonceForSlot(slot - 1));
  }

  private nonceForSlot(slot: number): string {
    return createHmac('sha256', this.nonceSecret).update(String(slot)).digest('base64url').slice(0, 32);
  }
}

/** `normalizeHtu` of the URIs seen lately (a proof's `htu` and the gateway's own, parsed once each). */
const normalizedHtus = new Map<string, string | undefined>();

/** The URI without query and fragment, normalized per RFC 3986 §6 (case, default port). */
function normalizeHtu(value: string): string | undefined {
  // Stryker disable next-line ConditionalExpression: parsing again a URI it remembers gives the same answer (time only)
  if (normalizedHtus.has(value)) return normalizedHtus.get(value);
  const normalized = parseHtu(value);
  // Stryker disable next-line ConditionalExpression,EqualityOperator: keeping or not keeping a long URI changes memory, not the answer
  if (value.length > 2048) return normalized;
  // Stryker disable next-line ConditionalExpression,EqualityOperator,BlockStatement: when the memory of URIs is emptied changes no answer, only memory
  if (normalizedHtus.size >= 1000) normalizedHtus.clear();
  // Stryker disable next-line CallExpression: not remembering a URI only means parsing it again (time only)
  normalizedHtus.set(value, normalized);
  return normalized;
}

function parseHtu(value: string): string | undefined {
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
