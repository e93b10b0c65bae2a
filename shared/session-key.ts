import { z } from 'zod';

/**
 * `typ` of the session-key certification: a compact JWS by the TPM-attested device key that lets a
 * short-lived software key sign one session's DPoP proofs (docs/protocol.md, "Session key").
 */
export const SESSION_KEY_TYP = 'session-key+jwt';

/** The most a session-key certification may be valid for (`exp - iat`). */
export const SESSION_KEY_MAX_LIFETIME_SECONDS = 900;

/**
 * Claims of a session-key certification: the session key's RFC 7638 thumbprint (`cnf.jkt`, RFC 7800),
 * the device challenge nonce of this session request, and its validity.
 */
export const SessionKeyClaims = z
  .object({
    nonce: z.string().min(16).max(200),
    iat: z.number().int(),
    exp: z.number().int(),
    cnf: z.object({ jkt: z.string().regex(/^[A-Za-z0-9_-]{43}$/) }).strict(),
  })
  .strict();
export type SessionKeyClaims = z.infer<typeof SessionKeyClaims>;
