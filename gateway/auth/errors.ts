/** OAuth error codes the gateway sends in `WWW-Authenticate` and the problem's `error`. */
export type AuthErrorCode = 'invalid_token' | 'invalid_dpop_proof' | 'use_dpop_nonce' | 'invalid_request';

/**
 * A rejected credential: becomes a 401 (or 400) problem with a `WWW-Authenticate` challenge.
 *
 * `detail` says exactly which check failed, so a client developer can act on it; it never
 * echoes the credential itself.
 */
export class AuthError extends Error {
  constructor(
    readonly error: AuthErrorCode,
    readonly detail: string,
    /** The scheme the challenge names: DPoP for gateway tokens, Bearer for identity-provider tokens. */
    readonly scheme: 'DPoP' | 'Bearer' = 'DPoP',
    readonly status: 400 | 401 = 401,
  ) {
    super(detail);
    this.name = 'AuthError';
  }
}
