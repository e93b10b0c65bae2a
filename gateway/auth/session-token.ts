import { randomUUID } from 'node:crypto';
import { jwtVerify, SignJWT, type JWTHeaderParameters } from 'jose';
import { z } from 'zod';
import { DeviceAssurance, PostureCheckId } from '../../shared/device';
import { AuthError } from './errors';
import { describeJoseError } from './identity-token';
import type { SigningKey } from './keys';

/** `typ` of gateway access tokens (RFC 9068). */
export const SESSION_TOKEN_TYP = 'at+jwt';
/** Lifetime of a gateway access token. */
export const SESSION_TOKEN_LIFETIME_SECONDS = 300;

/** Claims of a gateway access token. */
export const SessionTokenClaims = z.object({
  iss: z.string(),
  aud: z.string(),
  sub: z.string().min(1),
  iat: z.number().int(),
  exp: z.number().int(),
  jti: z.string().min(1),
  /** Session id: one per `POST /v1/session`. */
  sid: z.string().min(1),
  client_id: z.string().optional(),
  name: z.string().optional(),
  preferred_username: z.string().optional(),
  groups: z.array(z.string()),
  /** Thumbprint of the key every DPoP proof must be signed with: the device key, or its session key. */
  cnf: z.object({ jkt: z.string().min(43) }),
  /**
   * Thumbprint of the device key: the device's identity for enrolment, revocation, quotas, streams
   * and the audit. Differs from `cnf.jkt` when a TPM device key certified a session key; absent in
   * tokens from gateways before session keys, where it is `cnf.jkt`.
   */
  device_jkt: z.string().min(43).optional(),
  /** The device verdict at session time; Cedar's `context.device`. */
  device: z.object({
    id: z.string(),
    assurance: DeviceAssurance,
    compliant: z.boolean(),
    failedChecks: z.array(PostureCheckId),
  }),
});
export type SessionTokenClaims = z.infer<typeof SessionTokenClaims>;

/** The device key's thumbprint of a token (its identity), whichever key signs its proofs. */
export function deviceThumbprint(claims: Pick<SessionTokenClaims, 'cnf' | 'device_jkt'>): string {
  return claims.device_jkt ?? claims.cnf.jkt;
}

/** Claims the caller supplies; the issuer adds `iss`, `aud`, `iat`, `exp`, `jti`. */
export type SessionTokenContent = Omit<SessionTokenClaims, 'iss' | 'aud' | 'iat' | 'exp' | 'jti'>;

const CLOCK_TOLERANCE_SECONDS = 5;

/**
 * Issues and verifies the gateway's DPoP-bound access tokens (`typ: at+jwt`, ES256).
 *
 * Only the session key is accepted, found by `kid`; `aud` is the gateway itself.
 */
export class SessionTokens {
  /** Tokens already verified, until they expire; dropped at once on revocation or suspension. */
  private readonly verified = new Map<string, SessionTokenClaims>();

  constructor(
    private readonly key: SigningKey,
    private readonly issuer: string,
    /** Most verified tokens kept; the oldest is dropped beyond it. */
    private readonly cacheSize = 100_000,
  ) {}

  /** Verified tokens held (for metrics). */
  get cacheEntries(): number {
    return this.verified.size;
  }

  /** Forgets every cached token of a user (suspension). */
  forgetUser(userId: string): void {
    for (const [token, claims] of this.verified) if (claims.sub === userId) this.verified.delete(token);
  }

  /** Forgets every cached token of one device key of a user (revocation), its session keys' included. */
  forgetDevice(userId: string, jkt: string): void {
    for (const [token, claims] of this.verified) {
      if (claims.sub === userId && deviceThumbprint(claims) === jkt) this.verified.delete(token);
    }
  }

  /** Signs a token that expires after the lifetime or at `notAfter`, whichever is sooner. */
  async issue(content: SessionTokenContent, notAfter?: number): Promise<{ token: string; claims: SessionTokenClaims }> {
    const iat = Math.floor(Date.now() / 1000);
    const exp = Math.min(iat + SESSION_TOKEN_LIFETIME_SECONDS, notAfter ?? Number.POSITIVE_INFINITY);
    const claims: SessionTokenClaims = { ...content, iss: this.issuer, aud: this.issuer, iat, exp, jti: randomUUID() };
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: this.key.alg, typ: SESSION_TOKEN_TYP, kid: this.key.kid })
      .sign(this.key.privateKey);
    return { token, claims };
  }

  /**
   * Verifies a token per RFC 8725; throws `AuthError` naming the failed check.
   *
   * A token verified before is answered from memory until it expires: its signature and
   * claims cannot have changed, and what can (revocation, suspension) is checked by the caller
   * on every request or drops the entry through `forgetDevice` / `forgetUser`.
   */
  async verify(token: string): Promise<SessionTokenClaims> {
    const hit = this.verified.get(token);
    if (hit) {
      if (hit.exp > Date.now() / 1000 - CLOCK_TOLERANCE_SECONDS) return hit;
      this.verified.delete(token);
    }
    const claims = await this.verifyFully(token);
    if (this.verified.size >= this.cacheSize) {
      const now = Date.now() / 1000 - CLOCK_TOLERANCE_SECONDS;
      for (const [cached, entry] of this.verified) if (entry.exp <= now) this.verified.delete(cached);
      const oldest = this.verified.size >= this.cacheSize ? this.verified.keys().next().value : undefined;
      if (oldest !== undefined) this.verified.delete(oldest);
    }
    if (this.cacheSize > 0) this.verified.set(token, Object.freeze(claims));
    return claims;
  }

  private async verifyFully(token: string): Promise<SessionTokenClaims> {
    let payload: unknown;
    try {
      const result = await jwtVerify(
        token,
        (header: JWTHeaderParameters) => {
          if (header.kid !== this.key.kid) throw new Error('token kid is not the gateway session key');
          return this.key.publicKey;
        },
        {
          algorithms: [this.key.alg],
          typ: SESSION_TOKEN_TYP,
          issuer: this.issuer,
          audience: this.issuer,
          requiredClaims: ['iss', 'aud', 'exp', 'iat', 'sub', 'jti'],
          clockTolerance: CLOCK_TOLERANCE_SECONDS,
        },
      );
      payload = result.payload;
    } catch (error) {
      throw new AuthError('invalid_token', `Access token rejected: ${describeJoseError(error)}`);
    }
    const parsed = SessionTokenClaims.safeParse(payload);
    if (!parsed.success) throw new AuthError('invalid_token', 'Access token rejected: claims are malformed');
    if (parsed.data.iat > Date.now() / 1000 + CLOCK_TOLERANCE_SECONDS) {
      throw new AuthError('invalid_token', 'Access token rejected: "iat" is in the future');
    }
    return parsed.data;
  }
}
