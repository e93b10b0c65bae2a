import { calculateJwkThumbprint, decodeProtectedHeader, importJWK, jwtVerify, type JWK } from 'jose';
import { DeviceVerdict, PostureCheckId, PostureReportClaims, type DeviceAssurance } from '../../shared/device';
import { DEVICE_KEY_ALGORITHMS } from '../auth/dpop';
import { describeJoseError } from '../auth/identity-token';

/** `typ` of posture report JWS. */
export const POSTURE_TYP = 'posture+jwt';
/** How far a report's `iat` may be from now. */
const POSTURE_MAX_SKEW_SECONDS = 120;

/** A posture report that cannot be accepted; becomes a 400 problem. */
export class PostureError extends Error {
  constructor(readonly detail: string) {
    super(detail);
    this.name = 'PostureError';
  }
}

/**
 * Verifies a posture report signed by the device key that signed the request's DPoP proof.
 *
 * The caller checks the nonce against its challenge store.
 */
export async function verifyPostureReport(
  report: unknown,
  deviceJwk: JWK,
  deviceJkt: string,
): Promise<PostureReportClaims> {
  if (typeof report !== 'string' || report.length === 0) throw new PostureError('body.posture must be a compact JWS');
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(report);
  } catch {
    throw new PostureError('posture report is not a JWS');
  }
  if (header.typ !== POSTURE_TYP) throw new PostureError(`posture report typ must be "${POSTURE_TYP}"`);
  const alg = header.alg;
  if (!alg || !(DEVICE_KEY_ALGORITHMS as readonly string[]).includes(alg)) {
    throw new PostureError(`posture report alg must be one of ${DEVICE_KEY_ALGORITHMS.join(', ')}`);
  }
  if (header.jwk && (await calculateJwkThumbprint(header.jwk, 'sha256')) !== deviceJkt) {
    throw new PostureError('posture report is signed by another key than the DPoP proof');
  }
  let payload: unknown;
  try {
    const key = await importJWK(deviceJwk, alg);
    // Stryker disable next-line ObjectLiteral: typ and alg are checked above and the key is imported for that alg, so jose's own checks repeat them
    payload = (await jwtVerify(report, key, { algorithms: [alg], typ: POSTURE_TYP })).payload;
  } catch (error) {
    throw new PostureError(`posture report rejected (it must be signed by the DPoP key): ${describeJoseError(error)}`);
  }
  checkEachCheckOnce(payload);
  const claims = PostureReportClaims.safeParse(payload);
  if (!claims.success) {
    const issues = claims.error.issues.map((issue) => `${issuePath(issue.path)}: ${issue.message}`);
    throw new PostureError(`posture report claims are invalid: ${issues.join('; ')}`);
  }
  if (!REPORTED_DEVICE_ID.test(claims.data.deviceId)) {
    throw new PostureError(
      'posture report deviceId must be 1-128 printable characters without spaces and must not start with "tpm-ek:" (the id the gateway gives only to a device whose TPM it verified)',
    );
  }
  const overlong = overlongText(claims.data);
  if (overlong) throw new PostureError(`posture report ${overlong}`);
  if (Math.abs(Date.now() / 1000 - claims.data.iat) > POSTURE_MAX_SKEW_SECONDS) {
    throw new PostureError('posture report iat is too far from the current time');
  }
  return claims.data;
}

/** Where a claims issue is, its path dotted. */
function issuePath(path: readonly PropertyKey[]): string {
  const dotted = path.join('.');
  // Stryker disable next-line StringLiteral: unreachable, jose only verifies a JSON object payload and the claims schema is an object without refinements, so every issue has a path
  return dotted || '(root)';
}

/**
 * Longest free text a report may carry, in characters. The app writes a version string and a line or two
 * per check; the registry keeps it and the audit log records it on every session, so a script must not
 * store kilobytes there.
 */
const MAX_APP_VERSION = 100;
const MAX_CHECK_TEXT = 1000;

/** Names the first free-text field over its bound, or undefined. */
function overlongText(claims: PostureReportClaims): string | undefined {
  if (claims.appVersion.length > MAX_APP_VERSION) return `appVersion is longer than ${MAX_APP_VERSION} characters`;
  for (const [index, check] of claims.checks.entries()) {
    for (const field of ['detail', 'remediation'] as const) {
      if (check[field].length > MAX_CHECK_TEXT) {
        return `checks.${index}.${field} is longer than ${MAX_CHECK_TEXT} characters`;
      }
    }
  }
  return undefined;
}

/**
 * What a device may call itself in its report.
 *
 * The id is shown to IT (explain, the enrolment list, the audit), so a software key must not pass
 * for a TPM-verified device (`tpm-ek:…`, set by the gateway after attestation), nor carry control
 * characters or kilobytes of text into those views.
 */
const REPORTED_DEVICE_ID = /^(?!tpm-ek:)[\x21-\x7e]{1,128}$/;

/**
 * Judges a device: compliant only when every required check is reported and `pass`.
 *
 * `unknown` is not a pass, and a required check the report leaves out counts as failed.
 * `assurance` is what the gateway verified, never the report's own claim.
 */
export function deviceVerdict(
  claims: PostureReportClaims,
  requiredChecks: readonly PostureCheckId[],
  assurance: DeviceAssurance,
): DeviceVerdict {
  const byId = new Map(claims.checks.map((check) => [check.id, check]));
  const failedChecks = requiredChecks.filter((id) => byId.get(id)?.status !== 'pass');
  return DeviceVerdict.parse({
    id: claims.deviceId,
    assurance,
    compliant: failedChecks.length === 0,
    failedChecks,
    checks: claims.checks,
  });
}

/**
 * Refuses a report that names a check the gateway does not know, or one check more than once.
 *
 * A check reported `fail` and then `pass` must not count as passing; rather than pick one, the
 * whole report is refused as contradictory (400), and the client is told which check.
 */
function checkEachCheckOnce(payload: unknown): void {
  const checks = (payload as { checks?: unknown } | null)?.checks;
  if (!Array.isArray(checks)) return;
  const known = new Set<string>(PostureCheckId.options);
  const seen = new Map<string, unknown>();
  for (const check of checks as readonly { id?: unknown; status?: unknown }[]) {
    const id = check?.id;
    if (typeof id !== 'string') continue;
    if (!known.has(id)) {
      throw new PostureError(`posture report names an unknown check "${id}"; known checks: ${[...known].join(', ')}`);
    }
    if (seen.has(id)) {
      throw new PostureError(
        seen.get(id) === check.status
          ? `posture check "${id}" is reported twice; each check may appear once`
          : `posture report is contradictory: check "${id}" is reported both ${String(seen.get(id))} and ${String(check.status)}`,
      );
    }
    seen.set(id, check.status);
  }
}
