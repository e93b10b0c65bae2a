import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, CompactSign, type JWK } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SESSION_KEY_TYP } from '../../../shared/session-key';
import { AttestationError } from './refusal';
import { verifySessionKeyCertification, type SessionKeyExpectations } from './session-key';

/**
 * The session-key certification check (docs/protocol.md, "Session key") on certifications signed here
 * with node:crypto P-256 keys standing in for the TPM device key: every refusal by its step and exact
 * detail, at its boundary. No TPM, no gateway (session-key.test.ts runs the whole flow on swtpm).
 */

const NOW = 2_000_000_000;
const NONCE = 'n'.repeat(16) + '-challenge';

function p256(): { readonly privateKey: KeyObject; readonly jwk: JWK } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, jwk: publicKey.export({ format: 'jwk' }) as JWK };
}

const device = p256();
const session = p256();
const other = p256();
const sessionJkt = await calculateJwkThumbprint(session.jwk, 'sha256');
const deviceJkt = await calculateJwkThumbprint(device.jwk, 'sha256');

const publicJwk = (jwk: JWK): JWK => ({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y });

interface Certification {
  readonly header?: Record<string, unknown>;
  readonly claims?: Record<string, unknown>;
  /** Raw payload bytes instead of the claims' JSON. */
  readonly payload?: Uint8Array;
  readonly signer?: KeyObject;
}

/** A certification signed with the device key, the header and claims as given over valid defaults. */
async function certify(options: Certification = {}): Promise<string> {
  const claims = { nonce: NONCE, iat: NOW, exp: NOW + 300, cnf: { jkt: sessionJkt }, ...options.claims };
  const payload = options.payload ?? new TextEncoder().encode(JSON.stringify(claims));
  return new CompactSign(payload)
    .setProtectedHeader({ alg: 'ES256', typ: SESSION_KEY_TYP, jwk: publicJwk(device.jwk), ...options.header })
    .sign(options.signer ?? device.privateKey);
}

/** A compact JWS signed by hand (ES256), for headers jose would not sign. */
function signRaw(header: Record<string, unknown>, signer: KeyObject = device.privateKey): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const input = `${part(header)}.${part({ nonce: NONCE, iat: NOW, exp: NOW + 300, cnf: { jkt: sessionJkt } })}`;
  const signature = sign('sha256', Buffer.from(input), { key: signer, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

/** A compact JWS with this header and a signature that would never verify (for the checks before it). */
function unsigned(header: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part(header)}.${part({ nonce: NONCE })}.${Buffer.alloc(64).toString('base64url')}`;
}

const expected: SessionKeyExpectations = { nonce: NONCE, proofJkt: sessionJkt, now: NOW };

async function refusal(value: unknown, expectations: SessionKeyExpectations = expected) {
  const error = await verifySessionKeyCertification(value, expectations).then(
    (accepted) => accepted,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(AttestationError);
  const { step, detail } = error as AttestationError;
  return { step, detail };
}

const refused = (detail: string) => ({ step: 'session-key', detail });

afterEach(() => {
  vi.useRealTimers();
});

describe('verifySessionKeyCertification accepts', () => {
  it('a certification by the device key of the DPoP key, over this nonce: the device key as a bare public JWK', async () => {
    const accepted = await verifySessionKeyCertification(await certify(), expected);
    expect(accepted).toEqual({ deviceJwk: publicJwk(device.jwk), deviceJkt, sessionJkt, exp: NOW + 300 });
    expect(Object.keys(accepted.deviceJwk)).toEqual(['kty', 'crv', 'x', 'y']);
  });

  it('drops every other member of the jwk header (kid, alg, use) from the device key', async () => {
    const value = await certify({ header: { jwk: { ...publicJwk(device.jwk), kid: 'k1', alg: 'ES256', use: 'sig' } } });
    const accepted = await verifySessionKeyCertification(value, expected);
    expect(accepted.deviceJwk).toEqual(publicJwk(device.jwk));
    expect(accepted.deviceJkt).toBe(deviceJkt);
  });

  it('iat up to 120 s either side of now', async () => {
    for (const iat of [NOW - 120, NOW + 120]) {
      const accepted = await verifySessionKeyCertification(
        await certify({ claims: { iat, exp: iat + 900 } }),
        expected,
      );
      expect(accepted.exp).toBe(iat + 900);
    }
  });

  it('exp one second after now, and exactly 900 s after iat', async () => {
    const soon = await verifySessionKeyCertification(
      await certify({ claims: { iat: NOW - 100, exp: NOW + 1 } }),
      expected,
    );
    expect(soon.exp).toBe(NOW + 1);
    const longest = await verifySessionKeyCertification(
      await certify({ claims: { iat: NOW - 100, exp: NOW + 800 } }),
      expected,
    );
    expect(longest.exp).toBe(NOW + 800);
  });

  it('exp one second after iat when iat is in the future', async () => {
    const accepted = await verifySessionKeyCertification(
      await certify({ claims: { iat: NOW + 10, exp: NOW + 11 } }),
      expected,
    );
    expect(accepted.exp).toBe(NOW + 11);
  });

  it('checks the times against the clock (Unix seconds) when no now is given', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(NOW * 1000 + 999);
    const accepted = await verifySessionKeyCertification(await certify(), { nonce: NONCE, proofJkt: sessionJkt });
    expect(accepted.sessionJkt).toBe(sessionJkt);
    // An hour later the same certification has expired: the clock is read, not a constant.
    vi.setSystemTime((NOW + 3600) * 1000);
    expect(await refusal(await certify(), { nonce: NONCE, proofJkt: sessionJkt })).toEqual(
      refused('session_key iat is too far from the current time'),
    );
  });
});

describe('verifySessionKeyCertification refuses', () => {
  it('what is not a non-empty string of at most 8192 characters', async () => {
    const format = refused('session_key must be a compact JWS (typ session-key+jwt)');
    expect(await refusal(undefined)).toEqual(format);
    expect(await refusal(42)).toEqual(format);
    expect(await refusal({ payload: 'x' })).toEqual(format);
    expect(await refusal('')).toEqual(format);
    expect(await refusal((await certify()) + '.'.repeat(8193))).toEqual(format);
    expect(await refusal('a'.repeat(8193))).toEqual(format);
    // 8192 characters pass the length check and are refused as what they are.
    expect(await refusal('a'.repeat(8192))).toEqual(refused('session_key is not a JWS'));
  });

  it('a string that is not a JWS', async () => {
    expect(await refusal('not a jws')).toEqual(refused('session_key is not a JWS'));
  });

  it('another typ, or none', async () => {
    const typ = refused('session_key typ must be "session-key+jwt"');
    expect(await refusal(await certify({ header: { typ: 'dpop+jwt' } }))).toEqual(typ);
    expect(await refusal(await certify({ header: { typ: undefined } }))).toEqual(typ);
  });

  it('another alg than ES256', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const alg = refused('session_key alg must be ES256 (a TPM P-256 device key)');
    expect(await refusal(await certify({ header: { alg: 'ES384' }, signer: privateKey }))).toEqual(alg);
    expect(await refusal(unsigned({ alg: 'none', typ: SESSION_KEY_TYP, jwk: publicJwk(device.jwk) }))).toEqual(alg);
  });

  it('crit or b64 in the header, even when the signature verifies', async () => {
    const unsupported = refused('session_key uses unsupported header parameters');
    const header = { alg: 'ES256', typ: SESSION_KEY_TYP, jwk: publicJwk(device.jwk) };
    expect(await refusal(signRaw({ ...header, crit: ['exp'], exp: NOW }))).toEqual(unsupported);
    expect(await refusal(signRaw({ ...header, crit: [] }))).toEqual(unsupported);
    expect(await refusal(await certify({ header: { b64: true } }))).toEqual(unsupported);
  });

  it('a jwk header that is missing or not a P-256 public key', async () => {
    const jwk = refused('session_key must name the certifying P-256 device key in its jwk header');
    const { x, y } = device.jwk;
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
    for (const header of [
      { jwk: undefined },
      { jwk: { kty: 'EC', crv: 'P-384', x, y } },
      { jwk: { kty: 'OKP', crv: 'P-256', x, y } },
      { jwk: rsa },
      { jwk: { kty: 'EC', crv: 'P-256', y } },
      { jwk: { kty: 'EC', crv: 'P-256', x } },
      { jwk: { kty: 'EC', crv: 'P-256', x: 1, y } },
      { jwk: { kty: 'EC', crv: 'P-256', x, y: 1 } },
    ]) {
      expect(await refusal(unsigned({ alg: 'ES256', typ: SESSION_KEY_TYP, ...header }))).toEqual(jwk);
    }
  });

  it('a jwk header that holds the private key', async () => {
    const privateJwk = device.privateKey.export({ format: 'jwk' });
    expect(await refusal(await certify({ header: { jwk: privateJwk } }))).toEqual(
      refused('session_key jwk holds private key material'),
    );
  });

  it('a signature by another key than the one the jwk header names', async () => {
    expect(await refusal(await certify({ signer: other.privateKey }))).toEqual(
      refused('session_key signature does not verify with the device key it names'),
    );
  });

  it('claims that are not JSON, or not exactly {nonce, iat, exp, cnf: {jkt}}', async () => {
    const claims = refused('session_key claims must be exactly {nonce, iat, exp, cnf: {jkt}}');
    expect(await refusal(await certify({ payload: new TextEncoder().encode('{"nonce":') }))).toEqual(claims);
    expect(await refusal(await certify({ claims: { sub: 'someone' } }))).toEqual(claims);
    expect(await refusal(await certify({ claims: { iat: NOW + 0.5 } }))).toEqual(claims);
    expect(await refusal(await certify({ claims: { cnf: { jkt: 'short' } } }))).toEqual(claims);
  });

  it('a certification over another nonce', async () => {
    expect(await refusal(await certify({ claims: { nonce: 'another-nonce-of-this-person' } }))).toEqual(
      refused('session_key is over another nonce than this session request'),
    );
  });

  it('iat more than 120 s from now, either side', async () => {
    const skew = refused('session_key iat is too far from the current time');
    expect(await refusal(await certify({ claims: { iat: NOW - 121, exp: NOW + 300 } }))).toEqual(skew);
    expect(await refusal(await certify({ claims: { iat: NOW + 121, exp: NOW + 300 } }))).toEqual(skew);
  });

  it('exp at or before now', async () => {
    const expired = refused('session_key has expired');
    expect(await refusal(await certify({ claims: { iat: NOW - 100, exp: NOW } }))).toEqual(expired);
    expect(await refusal(await certify({ claims: { iat: NOW - 100, exp: NOW - 1 } }))).toEqual(expired);
  });

  it('exp at or before iat, or more than 900 s after it', async () => {
    const lifetime = refused('session_key must be valid for at most 900 s after iat');
    expect(await refusal(await certify({ claims: { iat: NOW + 100, exp: NOW + 50 } }))).toEqual(lifetime);
    expect(await refusal(await certify({ claims: { iat: NOW + 100, exp: NOW + 100 } }))).toEqual(lifetime);
    expect(await refusal(await certify({ claims: { iat: NOW - 100, exp: NOW + 801 } }))).toEqual(lifetime);
  });

  it('a certification of another key than the DPoP proof’s', async () => {
    const otherJkt = await calculateJwkThumbprint(other.jwk, 'sha256');
    expect(await refusal(await certify(), { ...expected, proofJkt: otherJkt })).toEqual(
      refused('session_key certifies another key than the one that signed the DPoP proof'),
    );
  });

  it('a certification of the device key itself', async () => {
    expect(
      await refusal(await certify({ claims: { cnf: { jkt: deviceJkt } } }), { ...expected, proofJkt: deviceJkt }),
    ).toEqual(refused('session_key certifies the device key itself'));
  });
});
