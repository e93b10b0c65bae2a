import { decodeJwt } from 'jose';
import { z } from 'zod';
import { DeviceVerdict, PostureReportClaims, type PostureCheck } from '../../shared/device';
import { AttestationCredential, attestDeviceKey, type TpmSessionEvidence } from '../device/attestation';
import { signWithDeviceKey, type JwsSigner } from '../device/jws';
import type { DeviceKey } from '../device/key';
import { Emitter } from '../events';
import type { Clock, HttpClient } from '../platform';
import { createDpopProof } from './dpop';
import { challengeError, GatewaySessionError, sessionErrorFromResponse } from './errors';
import { certifySessionKey, createSessionKey, type SessionKey } from './session-key';
import { transportProblem } from './transport';

/** `typ` of the posture report JWS. */
export const POSTURE_TYP = 'posture+jwt';

/** Renew when less than this is left of the session token (the gateway issues 5 minutes). */
const DEFAULT_RENEW_BEFORE_MS = 60_000;
/** Timeout of the attestation calls (challenge, session); later calls keep the caller's own signal. */
const DEFAULT_ATTEST_TIMEOUT_MS = 15_000;

const ChallengeResponse = z.object({ nonce: z.string().min(16) });
const SessionResponse = z.object({
  access_token: z.string().min(1),
  token_type: z.string().regex(/^dpop$/i, 'token_type must be DPoP'),
  expires_in: z.number().positive(),
  device: DeviceVerdict,
});

/** What {@link GatewaySession} needs. */
export interface GatewaySessionOptions {
  /** The gateway's base URL (managed config); every path is resolved against it. */
  readonly gatewayUrl: string;
  /** The installed app: the gateway URL must be https (development may use loopback http). */
  readonly packaged?: boolean;
  readonly http: HttpClient;
  readonly clock: Clock;
  /** The device key, or a function that opens it (`() => keyStore.load()`). */
  readonly deviceKey: DeviceKey | (() => Promise<DeviceKey>);
  /** Runs the posture checks for a report (e.g. `() => gate.recheck().then((s) => s.checks)`). */
  readonly posture: () => Promise<PostureCheck[]>;
  /** The signed-in user's identity-provider access token for the gateway. */
  readonly getIdpAccessToken: () => Promise<string>;
  /**
   * Answers a claims challenge (`401` with `WWW-Authenticate: … error="insufficient_claims", claims=…`) from
   * the session endpoint with a new identity token that carries the claims (IdentityService.handleClaimsChallenge).
   */
  readonly onClaimsChallenge?: (wwwAuthenticate: string) => Promise<string>;
  readonly appVersion: string;
  readonly platform: NodeJS.Platform;
  /**
   * Discovery's `endpoints.device_challenge`, `endpoints.session` and `endpoints.device_attestation`; default
   * `/v1/device/challenge`, `/v1/session`, and no attestation (the gateway announces it only when it trusts TPMs).
   */
  readonly endpoints?: {
    readonly deviceChallenge?: string;
    readonly session?: string;
    readonly deviceAttestation?: string;
  };
  readonly renewBeforeMs?: number;
  readonly attestTimeoutMs?: number;
  readonly log?: (message: string, error?: unknown) => void;
}

/** The outcome of attesting a hardware key before a session request. */
interface KeyAttestation {
  /** The session body's `attestation`, when the TPM and the gateway went through with it. */
  readonly evidence?: TpmSessionEvidence;
  /** Why it did not, to show if the gateway then refuses the device for want of attestation. */
  readonly refusal?: GatewaySessionError;
}

/** The gateway session as listeners see it (never the token). */
export interface GatewaySessionState {
  readonly status: 'none' | 'active';
  readonly deviceVerdict?: DeviceVerdict;
  /** Epoch milliseconds when the session token expires. */
  readonly expiresAt?: number;
}

interface ActiveSession {
  readonly accessToken: string;
  readonly expiresAt: number;
  readonly verdict: DeviceVerdict;
  /** The key that signs this session's DPoP proofs (`cnf.jkt`): a session key, or the device key itself. */
  readonly proofKey: SessionKey;
}

/**
 * The device-bound gateway session: attests the device, holds the DPoP-bound session token, and
 * authorizes every later gateway call.
 *
 * Attestation is `POST /v1/device/challenge` (Bearer identity token) for a nonce, then
 * `POST /v1/session` (Bearer identity token + DPoP proof) with a posture report signed by the
 * device key. The session token is renewed when less than a minute is left, re-established once
 * when the gateway says it is invalid, and a `DPoP-Nonce` the gateway asks for is remembered.
 *
 * A device key the gateway verified as hardware (TPM attestation) signs once per session: it certifies
 * a fresh in-memory software session key, which signs the posture report and every DPoP proof of that
 * session (docs/protocol.md, "Session key"). A software device key signs them itself.
 */
export class GatewaySession {
  private readonly changed = new Emitter<GatewaySessionState>();
  private readonly base: URL;
  private session: ActiveSession | undefined;
  private establishing: Promise<ActiveSession> | undefined;
  private dpopNonce: string | undefined;
  private generation = 0;

  /** Fires when a session is made, renewed or dropped. */
  readonly onDidChange = this.changed.event;

  constructor(private readonly options: GatewaySessionOptions) {
    try {
      this.base = new URL(options.gatewayUrl);
    } catch {
      throw new GatewaySessionError(
        'GATEWAY_UNAVAILABLE',
        `The gateway address "${options.gatewayUrl}" is not a URL. Ask IT to check the managed settings.`,
      );
    }
    const insecure = transportProblem(
      options.gatewayUrl,
      'The gateway URL (managed setting gatewayUrl)',
      options.packaged ?? false,
    );
    if (insecure) throw new GatewaySessionError('GATEWAY_UNAVAILABLE', insecure);
  }

  /** The gateway's verdict on this device from the last attestation. */
  get deviceVerdict(): DeviceVerdict | undefined {
    return this.session?.verdict;
  }

  /** The state listeners see. */
  get state(): GatewaySessionState {
    const session = this.session;
    return session
      ? { status: 'active', deviceVerdict: session.verdict, expiresAt: session.expiresAt }
      : { status: 'none' };
  }

  /** Makes sure a session with more than the renewal margin left exists, attesting if needed. */
  async ensureSession(): Promise<GatewaySessionState> {
    await this.activeSession();
    return this.state;
  }

  /** Attests again now (after the user fixed the device and pressed "check again"). */
  async reattest(): Promise<GatewaySessionState> {
    await this.establish(true);
    return this.state;
  }

  /** Forgets the gateway session (sign-out); the device key stays. */
  drop(): void {
    this.generation++;
    this.establishing = undefined;
    const had = this.session !== undefined;
    this.session = undefined;
    if (had) this.changed.fire(this.state);
  }

  dispose(): void {
    this.drop();
    this.changed.dispose();
  }

  /**
   * A DPoP proof for a request to the gateway (RFC 9449 §4.2), using the remembered server nonce unless given one.
   */
  async createDpopProof(htm: string, htu: string | URL, accessToken?: string, nonce?: string): Promise<string> {
    const key = this.session?.proofKey ?? (await this.key());
    return createDpopProof(key, { htm, htu, accessToken, nonce: nonce ?? this.dpopNonce }, this.options.clock.now());
  }

  /**
   * An authorized request to the gateway: `Authorization: DPoP <token>` and a fresh proof.
   *
   * `path` is relative to the gateway URL (or a URL on the gateway's origin; anything else is refused,
   * so the token never leaves for another host). The answer is returned whatever its status, after at
   * most one retry with a server nonce and one re-attestation on `invalid_token`. Bound, so it can be
   * handed to other services as a plain function.
   *
   * @throws {GatewaySessionError} when there is no session and one cannot be made, or the gateway is unreachable.
   */
  readonly fetch = (path: string, init: RequestInit = {}): Promise<Response> => this.authorizedFetch(path, init);

  private async authorizedFetch(path: string, init: RequestInit): Promise<Response> {
    const url = this.resolve(path);
    const method = (init.method ?? 'GET').toUpperCase();
    const replayable = !(init.body instanceof ReadableStream);
    let session = await this.activeSession();
    let nonceRetries = 0;
    let reattested = false;
    for (;;) {
      const headers = new Headers(init.headers);
      headers.set('Authorization', `DPoP ${session.accessToken}`);
      headers.set(
        'DPoP',
        await createDpopProof(
          session.proofKey,
          { htm: method, htu: url, accessToken: session.accessToken, nonce: this.dpopNonce },
          this.options.clock.now(),
        ),
      );
      const response = await this.send(url, { ...init, method, headers }, `${method} ${url.pathname}`);
      const previousNonce = this.dpopNonce;
      this.rememberNonce(response);
      if (response.status !== 401 || !replayable) return response;
      const error = challengeError(response);
      if (error === 'use_dpop_nonce' && this.dpopNonce !== previousNonce && nonceRetries < 1) {
        nonceRetries++;
        await response.body?.cancel();
        continue;
      }
      if (error === 'invalid_token' && !reattested) {
        reattested = true;
        nonceRetries = 0;
        await response.body?.cancel();
        session = await this.renewAfterRejection(session);
        continue;
      }
      return response;
    }
  }

  private async key(): Promise<DeviceKey> {
    const { deviceKey } = this.options;
    if (typeof deviceKey !== 'function') return deviceKey;
    try {
      return await deviceKey();
    } catch (error) {
      if (error instanceof Error && 'code' in error && error.code === 'DEVICE_BLOCKED') {
        throw new GatewaySessionError('DEVICE_BLOCKED', error.message, { cause: error });
      }
      throw new GatewaySessionError('DEVICE_BLOCKED', `The device key could not be opened: ${describe(error)}.`, {
        cause: error,
      });
    }
  }

  private resolve(path: string): URL {
    let url: URL;
    if (/^https?:\/\//i.test(path)) {
      url = new URL(path);
    } else {
      const relative = new URL(path, 'http://relative.invalid');
      url = new URL(this.base.href);
      url.pathname = `${this.base.pathname.replace(/\/$/, '')}/${relative.pathname.replace(/^\//, '')}`;
      url.search = relative.search;
    }
    if (url.origin !== this.base.origin) {
      throw new GatewaySessionError(
        'INTERNAL',
        `Refusing to send the gateway session to ${url.origin}, which is not the gateway.`,
      );
    }
    return url;
  }

  private async activeSession(): Promise<ActiveSession> {
    const session = this.session;
    const now = this.options.clock.now();
    const margin = this.options.renewBeforeMs ?? DEFAULT_RENEW_BEFORE_MS;
    if (session && session.expiresAt - now > margin) return session;
    try {
      return await this.establish(false);
    } catch (error) {
      const stillValid = session && this.session === session && session.expiresAt > this.options.clock.now();
      if (stillValid && error instanceof GatewaySessionError && error.code === 'GATEWAY_UNAVAILABLE') {
        this.options.log?.('Renewing the gateway session failed; using the current one until it expires', error);
        return session;
      }
      throw error;
    }
  }

  private async renewAfterRejection(rejected: ActiveSession): Promise<ActiveSession> {
    if (this.session !== rejected && this.session) return this.session;
    return this.establish(true);
  }

  private establish(force: boolean): Promise<ActiveSession> {
    if (this.establishing && !force) return this.establishing;
    const generation = this.generation;
    const attempt = this.attest().then((session) => {
      if (generation !== this.generation) {
        throw new GatewaySessionError(
          'NOT_SIGNED_IN',
          'You signed out while Clearance was connecting to the gateway. Sign in again.',
        );
      }
      this.session = session;
      this.changed.fire(this.state);
      return session;
    });
    const settled = attempt.finally(() => {
      if (this.establishing === settled) this.establishing = undefined;
    });
    this.establishing = settled;
    return settled;
  }

  private async attest(): Promise<ActiveSession> {
    let idpToken = await this.idpToken();
    let claimsAnswered = false;
    const key = await this.key();
    const checks = await this.options.posture();
    const sessionUrl = this.resolve(this.options.endpoints?.session ?? '/v1/session');
    for (let attempt = 0; ; attempt++) {
      const nonce = await this.challenge(idpToken);
      const tpm = await this.attestKey(key, idpToken, nonce);
      // An attested hardware key signs once, certifying a session key that signs everything else
      // (a TPM signature costs most of a second on a busy machine); a software key signs itself.
      const sessionKey = tpm.evidence ? await createSessionKey() : undefined;
      const proofKey: SessionKey = sessionKey ?? key;
      const certification = sessionKey
        ? await certifySessionKey(key, sessionKey, nonce, this.options.clock.now())
        : undefined;
      // Only a key the gateway can verify is claimed as hardware: a bare claim is refused.
      const report = await this.signPostureReport(
        proofKey,
        key.deviceId,
        nonce,
        checks,
        tpm.evidence ? 'hardware' : 'software',
      );
      const response = await this.send(
        sessionUrl,
        {
          method: 'POST',
          headers: {
            Authorization: `Bearer ${idpToken}`,
            DPoP: await createDpopProof(
              proofKey,
              { htm: 'POST', htu: sessionUrl, nonce: this.dpopNonce },
              this.options.clock.now(),
            ),
            'Content-Type': 'application/json',
            Accept: 'application/json',
          },
          body: JSON.stringify({
            posture: report,
            ...(tpm.evidence ? { attestation: tpm.evidence } : {}),
            ...(certification ? { session_key: certification } : {}),
          }),
          signal: AbortSignal.timeout(this.options.attestTimeoutMs ?? DEFAULT_ATTEST_TIMEOUT_MS),
        },
        'the session request',
      );
      const previousNonce = this.dpopNonce;
      this.rememberNonce(response);
      if (attempt === 0 && this.dpopNonce !== previousNonce && (await this.asksForNonce(response))) continue;
      const claimsChallenge = response.status === 401 ? response.headers.get('www-authenticate') : null;
      if (claimsChallenge?.includes('insufficient_claims') && this.options.onClaimsChallenge && !claimsAnswered) {
        claimsAnswered = true;
        idpToken = await this.options.onClaimsChallenge(claimsChallenge);
        continue;
      }
      if (!response.ok) {
        const error = await sessionErrorFromResponse(response, 'this device’s attestation', this.base.origin);
        // Refused for want of attestation: the reason the attestation itself failed says more.
        throw tpm.refusal && error.details.reason === 'DEVICE_ATTESTATION_FAILED' ? tpm.refusal : error;
      }
      return this.acceptSession(response, key, proofKey);
    }
  }

  /**
   * TPM key attestation for the challenge `nonce` (docs/protocol.md, "TPM key attestation"), when
   * the key has an attestor and the gateway announced the attestation endpoint.
   *
   * A failure is logged and returned, not thrown: the session request then goes without
   * attestation and the gateway decides (a `software` device, or a refusal under a `tpm` policy).
   */
  private async attestKey(key: DeviceKey, idpToken: string, nonce: string): Promise<KeyAttestation> {
    const endpoint = this.options.endpoints?.deviceAttestation;
    if (!key.attestor || !endpoint) return {};
    const url = this.resolve(endpoint);
    let gatewayRefusal: GatewaySessionError | undefined;
    try {
      const evidence = await attestDeviceKey(key.attestor, nonce, async (body) => {
        const response = await this.send(
          url,
          {
            method: 'POST',
            headers: {
              Authorization: `Bearer ${idpToken}`,
              'Content-Type': 'application/json',
              Accept: 'application/json',
            },
            body: JSON.stringify(body),
            signal: AbortSignal.timeout(this.options.attestTimeoutMs ?? DEFAULT_ATTEST_TIMEOUT_MS),
          },
          'the TPM key attestation',
        );
        if (!response.ok) {
          gatewayRefusal = await sessionErrorFromResponse(response, 'the TPM key attestation', this.base.origin);
          throw gatewayRefusal;
        }
        const credential = AttestationCredential.safeParse(await response.json().catch(() => undefined));
        if (!credential.success) throw new Error('the gateway sent an attestation credential Clearance cannot read');
        return credential.data;
      });
      return { evidence };
    } catch (error) {
      this.options.log?.('TPM key attestation failed; asking for a session without it', error);
      if (gatewayRefusal) return { refusal: gatewayRefusal };
      return {
        refusal: new GatewaySessionError(
          'DEVICE_BLOCKED',
          `This computer’s TPM could not prove that it holds the device key (${describe(error)}). ` +
            'Restart the computer and try again; if it keeps happening, send IT a diagnostics bundle.',
          { reason: 'DEVICE_ATTESTATION_FAILED', cause: error },
        ),
      };
    }
  }

  private async asksForNonce(response: Response): Promise<boolean> {
    if (response.status !== 400 && response.status !== 401) return false;
    if (challengeError(response) === 'use_dpop_nonce') return true;
    const body: unknown = await response
      .clone()
      .json()
      .catch(() => undefined);
    if (typeof body !== 'object' || body === null) return false;
    const error = (body as { error?: unknown }).error;
    const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : error;
    return code === 'use_dpop_nonce';
  }

  private async acceptSession(response: Response, key: DeviceKey, proofKey: SessionKey): Promise<ActiveSession> {
    let body: unknown;
    try {
      body = await response.json();
    } catch {
      body = undefined;
    }
    const parsed = SessionResponse.safeParse(body);
    if (!parsed.success) {
      throw new GatewaySessionError(
        'GATEWAY_UNAVAILABLE',
        `The gateway at ${this.base.origin} sent a session answer Clearance does not understand. Ask IT to check the gateway version.`,
      );
    }
    const bound = boundThumbprints(parsed.data.access_token);
    if (
      (bound.jkt !== undefined && bound.jkt !== proofKey.thumbprint) ||
      (bound.deviceJkt !== undefined && bound.deviceJkt !== key.thumbprint)
    ) {
      throw new GatewaySessionError(
        'INTERNAL',
        'The gateway bound the session to a different device key. Try again; if it keeps happening, send IT a diagnostics bundle.',
      );
    }
    return {
      accessToken: parsed.data.access_token,
      expiresAt: this.options.clock.now() + parsed.data.expires_in * 1000,
      verdict: parsed.data.device,
      proofKey,
    };
  }

  private async idpToken(): Promise<string> {
    try {
      const token = await this.options.getIdpAccessToken();
      if (!token) throw new Error('no access token');
      return token;
    } catch (error) {
      throw new GatewaySessionError('NOT_SIGNED_IN', `Sign in to connect to the gateway (${describe(error)}).`, {
        cause: error,
      });
    }
  }

  private async challenge(idpToken: string): Promise<string> {
    const url = this.resolve(this.options.endpoints?.deviceChallenge ?? '/v1/device/challenge');
    const response = await this.send(
      url,
      {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${idpToken}`,
          'Content-Type': 'application/json',
          Accept: 'application/json',
        },
        body: '{}',
        signal: AbortSignal.timeout(this.options.attestTimeoutMs ?? DEFAULT_ATTEST_TIMEOUT_MS),
      },
      'the device challenge',
    );
    this.rememberNonce(response);
    if (!response.ok) throw await sessionErrorFromResponse(response, 'the device challenge', this.base.origin);
    const parsed = ChallengeResponse.safeParse(await response.json().catch(() => undefined));
    if (!parsed.success) {
      throw new GatewaySessionError(
        'GATEWAY_UNAVAILABLE',
        `The gateway at ${this.base.origin} sent a device challenge without a usable nonce.`,
      );
    }
    return parsed.data.nonce;
  }

  private async signPostureReport(
    signer: JwsSigner,
    deviceId: string,
    nonce: string,
    checks: readonly PostureCheck[],
    assurance: DeviceKey['assurance'],
  ): Promise<string> {
    const platform = this.options.platform;
    if (platform !== 'linux' && platform !== 'darwin' && platform !== 'win32') {
      throw new GatewaySessionError(
        'DEVICE_BLOCKED',
        `Clearance can attest Linux, macOS and Windows devices, not ${platform}.`,
      );
    }
    const claims: PostureReportClaims = PostureReportClaims.strict().parse({
      nonce,
      iat: Math.floor(this.options.clock.now() / 1000),
      deviceId,
      assurance,
      platform,
      appVersion: this.options.appVersion,
      checks,
    });
    return signWithDeviceKey(signer, POSTURE_TYP, claims);
  }

  private async send(url: URL, init: RequestInit, what: string): Promise<Response> {
    try {
      return await this.options.http(url, init);
    } catch (error) {
      if (init.signal?.aborted && (init.signal.reason as Error | undefined)?.name !== 'TimeoutError') throw error;
      throw new GatewaySessionError(
        'GATEWAY_UNAVAILABLE',
        `Clearance could not reach the gateway at ${this.base.origin} for ${what} (${describe(error)}). Check your network connection or VPN, then try again.`,
        { cause: error },
      );
    }
  }

  private rememberNonce(response: Response): void {
    const nonce = response.headers.get('dpop-nonce');
    if (nonce && /^[\x21-\x7e]+$/.test(nonce)) this.dpopNonce = nonce;
  }
}

/** The `cnf.jkt` (proof key) and `device_jkt` (device key) of a JWT access token; none for an opaque token. */
function boundThumbprints(accessToken: string): { jkt?: string; deviceJkt?: string } {
  try {
    const claims = decodeJwt(accessToken);
    const jkt = (claims.cnf as { jkt?: unknown } | undefined)?.jkt;
    return {
      ...(typeof jkt === 'string' ? { jkt } : {}),
      ...(typeof claims.device_jkt === 'string' ? { deviceJkt: claims.device_jkt } : {}),
    };
  } catch {
    return {};
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
    return `${error.message}${cause}`;
  }
  return String(error);
}
