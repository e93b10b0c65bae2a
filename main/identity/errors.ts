import { AuthError, InteractionRequiredAuthError } from '@azure/msal-node';

/**
 * Why the identity service could not give what was asked.
 *
 * The first three are `IpcErrorCode`s the IPC layer passes on as they are;
 * `IDENTITY_PROVIDER_UNREACHABLE` means the network or the provider is down while the person
 * is still signed in (the IPC layer shows it as a temporary failure, not as a sign-out).
 */
export type IdentityErrorCode =
  'NOT_SIGNED_IN' | 'SIGN_IN_FAILED' | 'SIGN_IN_CANCELLED' | 'IDENTITY_PROVIDER_UNREACHABLE';

/** An identity failure with a code to switch on and a message a person can act on (never a token). */
export class IdentityError extends Error {
  override readonly name = 'IdentityError';

  constructor(
    readonly code: IdentityErrorCode,
    message: string,
    /** The provider's or MSAL's own error code, for logs and diagnostics. */
    readonly providerCode?: string,
  ) {
    super(message);
  }
}

/** A failure reaching the identity provider, carrying what went wrong on the wire. */
export class IdentityNetworkError extends AuthError {
  constructor(
    readonly url: string,
    readonly causeCode: string | undefined,
    detail: string,
  ) {
    super('network_error', '', detail);
    this.name = 'IdentityNetworkError';
    Object.setPrototypeOf(this, IdentityNetworkError.prototype);
  }
}

/** How a failure should change the session. */
export type FailureEffect = 'none' | 'sign-out';

/** A failure explained: the error to throw and whether the person must sign in again. */
export interface ExplainedFailure {
  readonly error: IdentityError;
  readonly effect: FailureEffect;
}

const CERTIFICATE_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_UNTRUSTED',
]);

/** Entra error numbers (`AADSTS…` in the description) worth their own sentence. */
const ENTRA_MESSAGES: ReadonlyArray<readonly [RegExp, string]> = [
  [/AADSTS50105\b/, 'Your account is not assigned to Clearance in your organisation. Ask IT to give you access.'],
  [
    /AADSTS(53000|53001|53003|530003)\b/,
    "Your organisation's access policy blocked this sign-in (for example, the device is not managed or not compliant). Contact IT.",
  ],
  [
    /AADSTS(65001|90094|90099)\b/,
    'An administrator of your organisation needs to approve Clearance before you can sign in. Contact IT.',
  ],
  [
    /AADSTS(50011|500113)\b/,
    "Clearance's sign-in address is not registered for this app in your organisation. Ask IT to add the redirect URI http://localhost (see the Entra set-up guide).",
  ],
  [
    /AADSTS(700016|90002|700054)\b/,
    'Clearance is not registered in your organisation, or its client ID or tenant is set wrong. Contact IT.',
  ],
  [/AADSTS50020\b/, 'This account belongs to another organisation. Sign in with your work account.'],
  [
    /AADSTS(70043|700082|50173|50133|50078|50076|50079)\b/,
    'Your sign-in has expired or needs to be confirmed again. Sign in again to continue.',
  ],
];

/**
 * Turns an MSAL, provider or network failure into a sentence a person understands.
 *
 * `during` says what was happening: an interactive sign-in reports provider refusals as
 * `SIGN_IN_FAILED`; a silent renewal reports them as `NOT_SIGNED_IN` and asks for a sign-out,
 * because only a new interactive sign-in can fix them. Network trouble never signs anyone out.
 */
export function explainFailure(error: unknown, during: 'sign-in' | 'renewal'): ExplainedFailure {
  if (error instanceof IdentityError) return { error, effect: error.code === 'NOT_SIGNED_IN' ? 'sign-out' : 'none' };
  const refused = (message: string, providerCode?: string): ExplainedFailure =>
    during === 'sign-in'
      ? { error: new IdentityError('SIGN_IN_FAILED', message, providerCode), effect: 'none' }
      : { error: new IdentityError('NOT_SIGNED_IN', message, providerCode), effect: 'sign-out' };

  if (error instanceof IdentityNetworkError) {
    const host = hostOf(error.url);
    const message =
      error.causeCode && CERTIFICATE_CODES.has(error.causeCode)
        ? `The sign-in service at ${host} presented a certificate this computer does not trust. Contact IT.`
        : error.causeCode === 'TIMEOUT'
          ? `The sign-in service at ${host} did not answer in time. Check your network connection and try again.`
          : `Clearance could not reach the sign-in service at ${host}. Check your network connection and try again.`;
    return {
      error: new IdentityError('IDENTITY_PROVIDER_UNREACHABLE', message, error.causeCode ?? 'network_error'),
      effect: 'none',
    };
  }

  if (!(error instanceof AuthError)) {
    const message = error instanceof Error ? error.message : String(error);
    return {
      error: new IdentityError(
        during === 'sign-in' ? 'SIGN_IN_FAILED' : 'IDENTITY_PROVIDER_UNREACHABLE',
        `Sign-in failed unexpectedly: ${sanitize(message)}`,
      ),
      effect: 'none',
    };
  }

  const code = error.errorCode;
  const description = `${error.errorMessage ?? ''} ${error.subError ?? ''}`;
  for (const [pattern, message] of ENTRA_MESSAGES) {
    if (pattern.test(description)) return refused(message, code);
  }

  if (error instanceof InteractionRequiredAuthError || INTERACTION_CODES.has(code)) {
    return {
      error: new IdentityError(
        'NOT_SIGNED_IN',
        'Your sign-in has expired or was ended. Sign in again to continue.',
        code,
      ),
      effect: 'sign-out',
    };
  }
  switch (code) {
    case 'access_denied':
      return refused('The sign-in was cancelled or refused in the browser. Choose Sign in to try again.', code);
    case 'invalid_grant':
      return {
        error: new IdentityError(
          'NOT_SIGNED_IN',
          'Your sign-in has expired or was revoked. Sign in again to continue.',
          code,
        ),
        effect: 'sign-out',
      };
    case 'invalid_client':
    case 'unauthorized_client':
    case 'invalid_scope':
    case 'invalid_target':
    case 'unsupported_response_type':
      return refused(
        `Clearance is not set up correctly with your organisation's sign-in service (${code}). Contact IT.`,
        code,
      );
    case 'invalid_request':
      return refused(
        `The sign-in service rejected Clearance's request${
          error.errorMessage ? `: ${sanitize(error.errorMessage)}` : ''
        }. Contact IT if this keeps happening.`,
        code,
      );
    case 'temporarily_unavailable':
    case 'server_error':
      return {
        error: new IdentityError(
          'IDENTITY_PROVIDER_UNREACHABLE',
          'The sign-in service had a problem. Wait a moment and try again.',
          code,
        ),
        effect: 'none',
      };
    case 'network_error':
    case 'endpoints_resolution_error':
    case 'openid_config_error':
      return {
        error: new IdentityError(
          'IDENTITY_PROVIDER_UNREACHABLE',
          'Clearance could not reach the sign-in service. Check your network connection and try again.',
          code,
        ),
        effect: 'none',
      };
    case 'untrusted_authority':
    case 'url_parse_error':
    case 'invalid_authority_type':
    case 'authority_mismatch':
    case 'issuer_validation_failed':
      return refused(`The sign-in service address configured for Clearance is not valid (${code}). Contact IT.`, code);
    case 'state_mismatch':
    case 'nonce_mismatch':
    case 'invalid_state':
      return refused('The browser returned an answer that does not belong to this sign-in. Try again.', code);
    case 'loopback_server_timeout':
    case 'loopback_server_error':
      return refused('Clearance could not start its local sign-in listener. Try again.', code);
    default:
      return refused(
        `Sign-in failed (${code})${error.errorMessage ? `: ${sanitize(error.errorMessage)}` : ''}. Try again.`,
        code,
      );
  }
}

const INTERACTION_CODES = new Set([
  'interaction_required',
  'login_required',
  'consent_required',
  'no_tokens_found',
  'refresh_token_expired',
  'bad_token',
  'no_account_in_silent_request',
]);

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'the configured address';
  }
}

/** One line, bounded, with anything that looks like a JWT or long secret removed. */
function sanitize(text: string): string {
  return text
    .replace(/ey[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*/g, '[token]')
    .replace(/[A-Za-z0-9_-]{60,}/g, '[redacted]')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 240);
}
