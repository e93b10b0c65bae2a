import { generateKeyPairSync } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { calculateJwkThumbprint, CompactSign, type JWK } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { SESSION_KEY_TYP } from '../../../shared/session-key';
import { ProblemError, sendProblem } from '../../http/problems';
import { QuotaExceeded } from '../../limits/quotas';
import type { AuditEntry, AuditLog, AuditRecord } from '../../store/audit-log';
import type { DeviceTrust } from './options';
import { AttestationError } from './refusal';
import {
  refuseUnattestedSessionKey,
  registerAttestationRoute,
  verifySessionAttestation,
  verifySessionKey,
} from './session-evidence';
import type {
  AttestationStartBody,
  TpmAttestationEvidence,
  TpmAttestationVerifier,
  VerifiedTpmKey,
} from './tpm-attestation';

/**
 * The glue between the session and attestation requests and the verifiers: what reaches the TPM
 * verifier, what is sent back, and that every refusal is audited (step and detail) and sent as the
 * 403 `device-attestation-failed` problem, while other failures pass through unaudited. In process:
 * Fastify's inject, a recording audit log and a TPM verifier that records its calls.
 */

const USER = 'user-1';

/** An audit log that keeps what is appended. */
function recordingAudit(): AuditLog & { readonly entries: AuditEntry[] } {
  const entries: AuditEntry[] = [];
  return {
    entries,
    async append(entry: AuditEntry) {
      entries.push(entry);
      return {} as AuditRecord;
    },
  } as AuditLog & { readonly entries: AuditEntry[] };
}

const refusalEntry = (step: string, detail: string): AuditEntry => ({
  kind: 'enrolment',
  subject: USER,
  data: { outcome: 'refused', reason: 'DEVICE_ATTESTATION_FAILED', step, detail },
});

/** The 403 problem of an attestation refusal at `step`. */
function expectProblem(error: unknown, step: string, detail: string): void {
  expect(error).toBeInstanceOf(ProblemError);
  const { problem } = error as ProblemError;
  expect(problem).toMatchObject({ status: 403, reason: 'DEVICE_ATTESTATION_FAILED', step, detail });
  expect(problem).toEqual(new AttestationError(step as AttestationError['step'], detail).toProblem().problem);
}

interface TpmCalls {
  readonly begin: [string, AttestationStartBody][];
  readonly complete: [string, string, TpmAttestationEvidence, unknown][];
}

/** A TPM verifier that records its calls and answers with `answer` (or throws what it returns as an error). */
function recordingTpm(answer: { begin?: () => unknown; complete?: () => unknown } = {}) {
  const calls: TpmCalls = { begin: [], complete: [] };
  const tpm = {
    async begin(userId: string, body: AttestationStartBody) {
      calls.begin.push([userId, body]);
      return (
        answer.begin?.() ?? { credentialBlob: Buffer.from([1, 2, 0xfb]), encryptedSecret: Buffer.from([0xff, 0xfe]) }
      );
    },
    async complete(userId: string, nonce: string, evidence: TpmAttestationEvidence, jwk: unknown) {
      calls.complete.push([userId, nonce, evidence, jwk]);
      return answer.complete?.() ?? VERIFIED;
    },
  } as unknown as TpmAttestationVerifier;
  return { tpm, calls };
}

const trustWith = (tpm?: TpmAttestationVerifier) => ({ tpm }) as unknown as DeviceTrust;

const VERIFIED: VerifiedTpmKey = { ekFingerprint: 'ab'.repeat(32), ekSubject: 'CN=EK', ekIssuer: 'CN=Root' };

// --- POST /v1/device/attestation -------------------------------------------------------------------

const START: AttestationStartBody = { nonce: 'n'.repeat(16), ek_certificate: 'AAAA', ak_public: 'AQID' };

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

/** A Fastify app with the route and the gateway's way of sending a ProblemError; `errors` are what reached it. */
async function route(trust: DeviceTrust, identify?: (request: FastifyRequest) => Promise<{ userId: string }>) {
  const audit = recordingAudit();
  const errors: unknown[] = [];
  const identified: FastifyRequest[] = [];
  app = Fastify();
  app.setErrorHandler(async (error, _request, reply) => {
    errors.push(error);
    if (error instanceof ProblemError) return sendProblem(reply, error.problem, error.headers);
    return reply.code(500).send({ failed: (error as Error).message });
  });
  registerAttestationRoute(app, {
    identify:
      identify ??
      (async (request) => {
        identified.push(request);
        return { userId: USER };
      }),
    trust,
    audit,
  });
  await app.ready();
  return { app, audit, errors, identified };
}

describe('POST /v1/device/attestation', () => {
  it('passes the caller and the body to the TPM verifier and sends the credential in base64url, not cached', async () => {
    const { tpm, calls } = recordingTpm();
    const { app, audit, errors, identified } = await route(trustWith(tpm));
    const response = await app.inject({ method: 'POST', url: '/v1/device/attestation', payload: START });
    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.json()).toEqual({ credential_blob: 'AQL7', encrypted_secret: '__4' });
    expect(calls.begin).toEqual([[USER, START]]);
    expect(identified).toHaveLength(1);
    expect(identified[0]!.url).toBe('/v1/device/attestation');
    expect(audit.entries).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('refuses a body of another shape (format), audited, without asking the verifier', async () => {
    const { tpm, calls } = recordingTpm();
    const { app, audit, errors } = await route(trustWith(tpm));
    const detail = 'the body must be {"nonce", "ek_certificate", "ak_public"} with base64 DER and TPM2B_PUBLIC';
    for (const payload of [{ ...START, nonce: 'short' }, { nonce: START.nonce }]) {
      const response = await app.inject({ method: 'POST', url: '/v1/device/attestation', payload });
      expect(response.statusCode).toBe(403);
      expect(response.json()).toMatchObject({ reason: 'DEVICE_ATTESTATION_FAILED', step: 'format', detail });
    }
    for (const error of errors) expectProblem(error, 'format', detail);
    expect(audit.entries).toEqual([refusalEntry('format', detail), refusalEntry('format', detail)]);
    expect(calls.begin).toEqual([]);
  });

  it('refuses when no manufacturer is trusted (ek-certificate), audited', async () => {
    const { app, audit, errors } = await route(trustWith(undefined));
    const response = await app.inject({ method: 'POST', url: '/v1/device/attestation', payload: START });
    expect(response.statusCode).toBe(403);
    const detail = 'this gateway trusts no TPM manufacturer yet (IT configures the manufacturer roots)';
    expectProblem(errors[0], 'ek-certificate', detail);
    expect(audit.entries).toEqual([refusalEntry('ek-certificate', detail)]);
  });

  it('sends and audits the verifier’s refusal at its step', async () => {
    const refusal = new AttestationError('ek-certificate', 'not from a trusted TPM manufacturer');
    const { tpm } = recordingTpm({
      begin: () => {
        throw refusal;
      },
    });
    const { app, audit, errors } = await route(trustWith(tpm));
    const response = await app.inject({ method: 'POST', url: '/v1/device/attestation', payload: START });
    expect(response.statusCode).toBe(403);
    expectProblem(errors[0], 'ek-certificate', 'not from a trusted TPM manufacturer');
    expect(audit.entries).toEqual([refusalEntry('ek-certificate', 'not from a trusted TPM manufacturer')]);
  });

  it('lets another failure (a quota) through as it is, not audited as an attestation refusal', async () => {
    const quota = new QuotaExceeded('user', 'too many', 30);
    const { tpm } = recordingTpm({
      begin: () => {
        throw quota;
      },
    });
    const { app, audit, errors } = await route(trustWith(tpm));
    const response = await app.inject({ method: 'POST', url: '/v1/device/attestation', payload: START });
    expect(response.statusCode).toBe(500);
    expect(errors).toEqual([quota]);
    expect(audit.entries).toEqual([]);
  });

  it('refuses an unidentified caller before reading the body, unaudited', async () => {
    const { tpm, calls } = recordingTpm();
    const unauthorized = new Error('no bearer token');
    const { app, audit, errors } = await route(trustWith(tpm), async () => {
      throw unauthorized;
    });
    const response = await app.inject({ method: 'POST', url: '/v1/device/attestation', payload: { nonce: 'x' } });
    expect(response.statusCode).toBe(500);
    expect(errors).toEqual([unauthorized]);
    expect(audit.entries).toEqual([]);
    expect(calls.begin).toEqual([]);
  });
});

// --- The session request's attestation ------------------------------------------------------------

const EVIDENCE: TpmAttestationEvidence = {
  format: 'tpm2',
  secret: 'c2VjcmV0',
  device_public: 'AQID',
  certify_info: 'BAUG',
  certify_signature: 'BwgJ',
};
const JWK_OF_DEVICE = { crv: 'P-256', x: 'x-coordinate', y: 'y-coordinate' };

async function thrownBy(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => ({ resolved: value }),
    (error: unknown) => error,
  );
}

describe('verifySessionAttestation', () => {
  it('is undefined without an attestation (a software device), asking and auditing nothing', async () => {
    const { tpm, calls } = recordingTpm();
    const audit = recordingAudit();
    expect(await verifySessionAttestation(trustWith(tpm), audit, USER, 'nonce', undefined, JWK_OF_DEVICE)).toBe(
      undefined,
    );
    expect(calls.complete).toEqual([]);
    expect(audit.entries).toEqual([]);
  });

  it('passes person, nonce, evidence and device key to the verifier and returns what it proved', async () => {
    const { tpm, calls } = recordingTpm();
    const audit = recordingAudit();
    expect(await verifySessionAttestation(trustWith(tpm), audit, USER, 'the-nonce', EVIDENCE, JWK_OF_DEVICE)).toEqual(
      VERIFIED,
    );
    expect(calls.complete).toEqual([[USER, 'the-nonce', EVIDENCE, JWK_OF_DEVICE]]);
    expect(audit.entries).toEqual([]);
  });

  it('refuses evidence of another shape (format), audited, without asking the verifier', async () => {
    const detail =
      'attestation must be {"format": "tpm2", "secret", "device_public", "certify_info", "certify_signature"}';
    for (const attestation of [null, 'tpm2', { ...EVIDENCE, format: 'tpm' }, { ...EVIDENCE, secret: '' }]) {
      const { tpm, calls } = recordingTpm();
      const audit = recordingAudit();
      const error = await thrownBy(
        verifySessionAttestation(trustWith(tpm), audit, USER, 'nonce', attestation, JWK_OF_DEVICE),
      );
      expectProblem(error, 'format', detail);
      expect(audit.entries).toEqual([refusalEntry('format', detail)]);
      expect(calls.complete).toEqual([]);
    }
  });

  it('refuses when no manufacturer is trusted (ek-certificate), audited', async () => {
    const audit = recordingAudit();
    const error = await thrownBy(
      verifySessionAttestation(trustWith(undefined), audit, USER, 'nonce', EVIDENCE, JWK_OF_DEVICE),
    );
    expectProblem(error, 'ek-certificate', 'this gateway trusts no TPM manufacturer yet');
    expect(audit.entries).toEqual([refusalEntry('ek-certificate', 'this gateway trusts no TPM manufacturer yet')]);
  });

  it('sends and audits the verifier’s refusal at its step', async () => {
    const { tpm } = recordingTpm({
      complete: () => {
        throw new AttestationError('certification', 'the certification is not over this challenge’s nonce');
      },
    });
    const audit = recordingAudit();
    const error = await thrownBy(verifySessionAttestation(trustWith(tpm), audit, USER, 'n', EVIDENCE, JWK_OF_DEVICE));
    expectProblem(error, 'certification', 'the certification is not over this challenge’s nonce');
    expect(audit.entries).toEqual([
      refusalEntry('certification', 'the certification is not over this challenge’s nonce'),
    ]);
  });

  it('lets another failure (the store is down) through as it is, unaudited', async () => {
    const down = new Error('the activation store is unreachable');
    const { tpm } = recordingTpm({
      complete: () => {
        throw down;
      },
    });
    const audit = recordingAudit();
    expect(await thrownBy(verifySessionAttestation(trustWith(tpm), audit, USER, 'n', EVIDENCE, JWK_OF_DEVICE))).toBe(
      down,
    );
    expect(audit.entries).toEqual([]);
  });
});

// --- The session key --------------------------------------------------------------------------------

const NOW = 2_000_000_000;
const NONCE = 'session-request-nonce';
const device = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const sessionJwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }) as JWK;

async function certification(claims: Record<string, unknown> = {}): Promise<string> {
  const { crv, kty, x, y } = device.publicKey.export({ format: 'jwk' });
  const payload = {
    nonce: NONCE,
    iat: NOW,
    exp: NOW + 300,
    cnf: { jkt: await calculateJwkThumbprint(sessionJwk, 'sha256') },
    ...claims,
  };
  return new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader({ alg: 'ES256', typ: SESSION_KEY_TYP, jwk: { crv, kty, x, y } })
    .sign(device.privateKey);
}

describe('verifySessionKey', () => {
  it('is undefined without a session key, auditing nothing', async () => {
    const audit = recordingAudit();
    expect(await verifySessionKey(audit, USER, undefined, { nonce: NONCE, proofJkt: 'x', now: NOW })).toBe(undefined);
    expect(audit.entries).toEqual([]);
  });

  it('returns the certified session key', async () => {
    const audit = recordingAudit();
    const proofJkt = await calculateJwkThumbprint(sessionJwk, 'sha256');
    const certified = await verifySessionKey(audit, USER, await certification(), { nonce: NONCE, proofJkt, now: NOW });
    expect(certified).toMatchObject({ sessionJkt: proofJkt, exp: NOW + 300 });
    expect(certified?.deviceJkt).toBe(
      await calculateJwkThumbprint(device.publicKey.export({ format: 'jwk' }) as JWK, 'sha256'),
    );
    expect(audit.entries).toEqual([]);
  });

  it('sends and audits a refused certification at step session-key', async () => {
    const audit = recordingAudit();
    const proofJkt = await calculateJwkThumbprint(sessionJwk, 'sha256');
    const error = await thrownBy(
      verifySessionKey(audit, USER, await certification({ nonce: 'another-nonce-entirely' }), {
        nonce: NONCE,
        proofJkt,
        now: NOW,
      }),
    );
    const detail = 'session_key is over another nonce than this session request';
    expectProblem(error, 'session-key', detail);
    expect(audit.entries).toEqual([refusalEntry('session-key', detail)]);
  });

  it('lets a failure that is not a refusal through as it is, unaudited', async () => {
    const audit = recordingAudit();
    const broken = new Error('the expectations could not be read');
    const expectations = {
      proofJkt: 'x',
      get nonce(): string {
        throw broken;
      },
    };
    expect(await thrownBy(verifySessionKey(audit, USER, await certification(), expectations))).toBe(broken);
    expect(audit.entries).toEqual([]);
  });
});

describe('refuseUnattestedSessionKey', () => {
  it('audits and sends the refusal of a session key certified by an unattested key', async () => {
    const audit = recordingAudit();
    const detail =
      'only a device key verified as hardware by TPM attestation in the same request may certify a session key';
    expectProblem(await thrownBy(refuseUnattestedSessionKey(audit, USER)), 'session-key', detail);
    expect(audit.entries).toEqual([refusalEntry('session-key', detail)]);
  });
});
