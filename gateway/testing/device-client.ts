import { createHash, randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import type { DeviceVerdict, PostureCheck, PostureReportClaims } from '../../shared/device';

/** Every posture check passing. */
export const PASSING_CHECKS: readonly PostureCheck[] = (
  ['os-version', 'disk-encryption', 'screen-lock', 'firewall', 'managed', 'app-integrity'] as const
).map((id) => ({ id, status: 'pass', detail: `${id} ok`, remediation: '' }));

/** Changes to one DPoP proof, for negative tests. */
export interface ProofOptions {
  readonly accessToken?: string;
  readonly nonce?: string;
  readonly header?: Record<string, unknown>;
  readonly claims?: Record<string, unknown>;
  /** Sign with another key (the header still names this device's public key unless overridden). */
  readonly signingKey?: CryptoKey;
}

/**
 * A device for gateway tests: an ES256 device key that makes DPoP proofs and posture reports
 * exactly as the desktop client does.
 */
export class TestDevice {
  private constructor(
    readonly privateKey: CryptoKey | undefined,
    readonly publicJwk: JWK,
    readonly jkt: string,
    readonly deviceId: string,
    readonly assurance: 'software' | 'hardware',
    private readonly signer?: (input: Uint8Array) => Promise<Uint8Array>,
  ) {}

  /** A device whose key signs elsewhere (a TPM): `sign` returns the ES256 signature r‖s. */
  static async withSigner(
    publicJwk: JWK,
    sign: (input: Uint8Array) => Promise<Uint8Array>,
    assurance: 'software' | 'hardware' = 'hardware',
  ): Promise<TestDevice> {
    const jkt = await calculateJwkThumbprint(publicJwk, 'sha256');
    return new TestDevice(undefined, publicJwk, jkt, `device-${randomUUID()}`, assurance, sign);
  }

  private async jws(header: Record<string, unknown>, claims: Record<string, unknown>, key?: CryptoKey) {
    if (key || !this.signer)
      return new SignJWT(claims).setProtectedHeader(header as never).sign(key ?? this.privateKey!);
    const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    const signature = await this.signer(new TextEncoder().encode(input));
    return `${input}.${Buffer.from(signature).toString('base64url')}`;
  }

  /** Makes a fresh device key. */
  static async create(options: { assurance?: 'software' | 'hardware'; deviceId?: string } = {}): Promise<TestDevice> {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const publicJwk = await exportJWK(publicKey);
    const jkt = await calculateJwkThumbprint(publicJwk, 'sha256');
    return new TestDevice(
      privateKey,
      publicJwk,
      jkt,
      options.deviceId ?? `device-${randomUUID()}`,
      options.assurance ?? 'software',
    );
  }

  /** A DPoP proof (RFC 9449 §4.2) for `method url`. */
  async proof(method: string, url: string, options: ProofOptions = {}): Promise<string> {
    const target = new URL(url);
    const claims: Record<string, unknown> = {
      jti: randomUUID(),
      htm: method,
      htu: `${target.origin}${target.pathname}`,
      iat: Math.floor(Date.now() / 1000),
      ...(options.accessToken ? { ath: createHash('sha256').update(options.accessToken).digest('base64url') } : {}),
      ...(options.nonce ? { nonce: options.nonce } : {}),
      ...options.claims,
    };
    return this.jws(
      { alg: 'ES256', typ: 'dpop+jwt', jwk: this.publicJwk, ...options.header },
      claims,
      options.signingKey,
    );
  }

  /** A posture report (`typ: posture+jwt`) carrying `nonce`. */
  async posture(nonce: string, overrides: Partial<PostureReportClaims> = {}, signingKey?: CryptoKey): Promise<string> {
    const claims: PostureReportClaims = {
      nonce,
      iat: Math.floor(Date.now() / 1000),
      deviceId: this.deviceId,
      assurance: this.assurance,
      platform: 'linux',
      appVersion: '0.1.0-test',
      checks: [...PASSING_CHECKS],
      ...overrides,
    };
    return this.jws({ alg: 'ES256', typ: 'posture+jwt' }, { ...claims }, signingKey);
  }
}

/** Result of signing a device in. */
export interface TestSession {
  readonly accessToken: string;
  readonly device: DeviceVerdict;
  readonly sessionId: string;
}

/**
 * Drives the gateway like the desktop client: challenge, session, then DPoP-authenticated calls.
 */
export class GatewayTestClient {
  accessToken: string | undefined;

  constructor(
    readonly gatewayUrl: string,
    readonly device: TestDevice,
    /** How requests are sent; a test of mutual TLS passes one with a client certificate. */
    private readonly send: typeof fetch = (input, init) => fetch(input, init),
  ) {}

  /** Asks the gateway for a device challenge nonce. */
  async challenge(idpToken: string): Promise<string> {
    const challenge = await this.send(`${this.gatewayUrl}/v1/device/challenge`, {
      method: 'POST',
      headers: { authorization: `Bearer ${idpToken}` },
    });
    if (!challenge.ok) throw new Error(`challenge failed: ${challenge.status} ${await challenge.text()}`);
    return ((await challenge.json()) as { nonce: string }).nonce;
  }

  /** `POST /v1/session` with a posture report over `nonce` and `extraBody` (an attestation); the raw response. */
  async requestSession(
    idpToken: string,
    nonce: string,
    posture: Partial<PostureReportClaims> = {},
    extraBody: Record<string, unknown> = {},
  ): Promise<Response> {
    const url = `${this.gatewayUrl}/v1/session`;
    return this.send(url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${idpToken}`,
        dpop: await this.device.proof('POST', url),
        'content-type': 'application/json',
      },
      body: JSON.stringify({ posture: await this.device.posture(nonce, posture), ...extraBody }),
    });
  }

  /** Challenge + posture + session; throws with the problem when the gateway refuses. */
  async signIn(
    idpToken: string,
    posture: Partial<PostureReportClaims> = {},
    extraBody: Record<string, unknown> = {},
  ): Promise<TestSession> {
    const nonce = await this.challenge(idpToken);
    const response = await this.requestSession(idpToken, nonce, posture, extraBody);
    return this.acceptSession(response);
  }

  /** Takes the session from a successful `POST /v1/session` response; throws with the problem otherwise. */
  async acceptSession(response: Response): Promise<TestSession> {
    if (!response.ok) throw new Error(`session failed: ${response.status} ${await response.text()}`);
    const body = (await response.json()) as { access_token: string; device: DeviceVerdict; session_id: string };
    this.accessToken = body.access_token;
    return { accessToken: body.access_token, device: body.device, sessionId: body.session_id };
  }

  /** A DPoP-authenticated request to `path` with this client's token. */
  async request(
    method: string,
    path: string,
    options: {
      body?: unknown;
      headers?: Record<string, string>;
      proof?: ProofOptions;
      token?: string;
      signal?: AbortSignal;
    } = {},
  ): Promise<Response> {
    const token = options.token ?? this.accessToken;
    if (!token) throw new Error('sign in first');
    const url = `${this.gatewayUrl}${path}`;
    return this.send(url, {
      method,
      headers: {
        authorization: `DPoP ${token}`,
        dpop: await this.device.proof(method, url, { accessToken: token, ...options.proof }),
        ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...options.headers,
      },
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  /** Fetches the entitlement document; returns the compact JWS and its (unverified) claims. */
  async entitlements(): Promise<{ jws: string; claims: Record<string, unknown> }> {
    const response = await this.request('GET', '/v1/entitlements');
    if (!response.ok) throw new Error(`entitlements failed: ${response.status} ${await response.text()}`);
    const jws = await response.text();
    return { jws, claims: decodeJwt(jws) };
  }
}

/** Reads Server-Sent Events from a fetch response, one at a time. */
export class SseReader {
  private readonly queue: EventSourceMessage[] = [];
  private readonly comments: string[] = [];
  private waiter: (() => void) | undefined;
  private ended = false;
  private readonly done: Promise<void>;

  constructor(response: Response) {
    const parser = createParser({
      onEvent: (event) => {
        this.queue.push(event);
        this.waiter?.();
      },
      onComment: (comment) => this.comments.push(comment),
    });
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    this.done = (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          parser.feed(decoder.decode(value, { stream: true }));
        }
      } catch {
        // the stream was aborted
      } finally {
        this.ended = true;
        this.waiter?.();
      }
    })();
  }

  /** Comment lines seen so far (heartbeats). */
  get seenComments(): readonly string[] {
    return this.comments;
  }

  /** The next event, or undefined when the stream ends first; rejects after `timeoutMs`. */
  async next(timeoutMs = 5000): Promise<EventSourceMessage | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0 && !this.ended) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`no SSE event within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.queue.shift();
  }

  /** Resolves when the stream has ended. */
  finished(): Promise<void> {
    return this.done;
  }
}
