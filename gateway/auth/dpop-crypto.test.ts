import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { DpopVerifier } from './dpop';
import { AuthError } from './errors';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const URL_ = 'http://127.0.0.1:8787/v1/models';

async function keyPair(alg: 'ES256' | 'EdDSA') {
  const { privateKey, publicKey } = await generateKeyPair(alg, alg === 'EdDSA' ? { crv: 'Ed25519' } : {});
  const jwk = await exportJWK(publicKey);
  return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk, 'sha256') };
}

async function proof(alg: 'ES256' | 'EdDSA', key: CryptoKey, jwk: JWK, claims: Record<string, unknown> = {}) {
  return new SignJWT({ jti: crypto.randomUUID(), htm: 'GET', htu: URL_, iat: Math.floor(Date.now() / 1000), ...claims })
    .setProtectedHeader({ alg, typ: 'dpop+jwt', jwk })
    .sign(key);
}

async function rejection(promise: Promise<unknown>): Promise<AuthError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(AuthError);
  // Every refusal here is of the proof itself: 401, invalid_dpop_proof.
  expect((error as AuthError).error).toBe('invalid_dpop_proof');
  expect((error as AuthError).status).toBe(401);
  return error as AuthError;
}

describe('DpopVerifier (node:crypto verification, keys imported once)', () => {
  it.each(['ES256', 'EdDSA'] as const)('accepts a %s proof and reports the RFC 7638 thumbprint', async (alg) => {
    const { privateKey, jwk, jkt } = await keyPair(alg);
    const verifier = new DpopVerifier();
    const result = await verifier.verify(await proof(alg, privateKey, jwk), { method: 'GET', urls: [URL_] });
    expect(result.jkt).toBe(jkt);
    // The second proof of the same key reuses the imported key.
    await verifier.verify(await proof(alg, privateKey, jwk), { method: 'GET', urls: [URL_] });
    expect(verifier.keyCacheEntries).toBe(1);
  });

  it('refuses a proof whose payload was changed after signing, even with its key cached', async () => {
    const { privateKey, jwk } = await keyPair('ES256');
    const verifier = new DpopVerifier();
    await verifier.verify(await proof('ES256', privateKey, jwk), { method: 'GET', urls: [URL_] });
    const [header, , signature] = (await proof('ES256', privateKey, jwk)).split('.');
    const forged = Buffer.from(
      JSON.stringify({ jti: crypto.randomUUID(), htm: 'POST', htu: URL_, iat: Math.floor(Date.now() / 1000) }),
    ).toString('base64url');
    const error = await rejection(
      verifier.verify(`${header}.${forged}.${signature}`, { method: 'POST', urls: [URL_] }),
    );
    expect(error.detail).toBe('DPoP proof rejected: signature does not verify');
  });

  it('refuses ES256 signatures that are not r‖s of a valid signature (zero, all ones, DER) without throwing anything else', async () => {
    const { privateKey, jwk } = await keyPair('ES256');
    const verifier = new DpopVerifier();
    const [header, payload, signature] = (await proof('ES256', privateKey, jwk)).split('.');
    const der = sign('sha256', Buffer.from(`${header}.${payload}`), {
      key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
    });
    for (const bad of [Buffer.alloc(64), Buffer.alloc(64, 0xff), der, Buffer.from(signature!, 'base64url').reverse()]) {
      const error = await rejection(
        verifier.verify(`${header}.${payload}.${bad.toString('base64url')}`, { method: 'GET', urls: [URL_] }),
      );
      expect(error.detail).toBe('DPoP proof rejected: signature does not verify');
    }
    // The untouched proof still passes (nothing above was remembered as used).
    expect((await verifier.verify(`${header}.${payload}.${signature}`, { method: 'GET', urls: [URL_] })).jwk).toEqual(
      jwk,
    );
  });

  it('refuses a key that does not fit the algorithm it names', async () => {
    const { privateKey, jwk } = await keyPair('EdDSA');
    const error = await rejection(
      new DpopVerifier().verify(
        await new SignJWT({ jti: crypto.randomUUID(), htm: 'GET', htu: URL_, iat: Math.floor(Date.now() / 1000) })
          .setProtectedHeader({ alg: 'EdDSA', typ: 'dpop+jwt', jwk: { ...jwk, kty: 'EC', crv: 'P-256', y: jwk.x } })
          .sign(privateKey),
        { method: 'GET', urls: [URL_] },
      ),
    );
    expect(error.detail).toBe('DPoP proof jwk is not a key for EdDSA (kty/crv)');
  });

  it('refuses an expired proof and critical header parameters', async () => {
    const { privateKey, jwk } = await keyPair('ES256');
    const verifier = new DpopVerifier();
    const expired = await proof('ES256', privateKey, jwk, { exp: Math.floor(Date.now() / 1000) - 60 });
    expect((await rejection(verifier.verify(expired, { method: 'GET', urls: [URL_] }))).detail).toBe(
      'DPoP proof rejected: token expired ("exp")',
    );
    // jose will not sign an unknown crit; sign by hand so the verifier sees one.
    const { privateKey: nodeKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const header = {
      alg: 'ES256',
      typ: 'dpop+jwt',
      jwk: publicKey.export({ format: 'jwk' }),
      crit: ['urn:x'],
      'urn:x': 1,
    };
    const payload = { jti: crypto.randomUUID(), htm: 'GET', htu: URL_, iat: Math.floor(Date.now() / 1000) };
    const input = `${b64(header)}.${b64(payload)}`;
    const signature = sign('sha256', Buffer.from(input), { key: nodeKey, dsaEncoding: 'ieee-p1363' });
    const critical = `${input}.${signature.toString('base64url')}`;
    expect((await rejection(verifier.verify(critical, { method: 'GET', urls: [URL_] }))).detail).toBe(
      'DPoP proof uses unsupported header parameters (crit/b64)',
    );
  });

  it('refuses the same proof twice', async () => {
    const { privateKey, jwk } = await keyPair('ES256');
    const verifier = new DpopVerifier();
    const once = await proof('ES256', privateKey, jwk);
    await verifier.verify(once, { method: 'GET', urls: [URL_] });
    expect((await rejection(verifier.verify(once, { method: 'GET', urls: [URL_] }))).detail).toBe(
      'DPoP proof was already used (jti replay)',
    );
  });
});
