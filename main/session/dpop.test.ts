import { decodeJwt, decodeProtectedHeader, EmbeddedJWK, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { accessTokenHash, createDpopProof, dpopHtu } from './dpop';
import { generateTestDeviceKey } from './testing';

describe('DPoP proofs (RFC 9449 §4.2)', () => {
  it('computes ath as in the RFC 9449 example', () => {
    expect(accessTokenHash('Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU')).toBe(
      'fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo',
    );
  });

  it('drops query and fragment from htu', () => {
    expect(dpopHtu('https://gw.lab.example/v1/models?limit=5#top')).toBe('https://gw.lab.example/v1/models');
    expect(dpopHtu(new URL('https://GW.lab.example:443/v1/session'))).toBe('https://gw.lab.example/v1/session');
  });

  it('signs a proof with typ, ES256 and the public jwk that verifies with that key', async () => {
    const key = await generateTestDeviceKey();
    const proof = await createDpopProof(
      key,
      { htm: 'post', htu: 'https://gw.lab.example/v1/chat/completions?x=1', accessToken: 'tok', nonce: 'n-1' },
      Date.parse('2026-11-26T09:00:00.900Z'),
    );
    const header = decodeProtectedHeader(proof);
    expect(header).toEqual({ typ: 'dpop+jwt', alg: 'ES256', jwk: key.publicJwk });
    const { payload } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ['ES256'] });
    expect(payload).toEqual({
      jti: expect.stringMatching(/^[0-9a-f-]{36}$/),
      htm: 'POST',
      htu: 'https://gw.lab.example/v1/chat/completions',
      iat: Math.floor(Date.parse('2026-11-26T09:00:00Z') / 1000),
      ath: accessTokenHash('tok'),
      nonce: 'n-1',
    });
  });

  it('leaves out ath and nonce when there is no token or nonce, and never repeats a jti', async () => {
    const key = await generateTestDeviceKey();
    const a = decodeJwt(await createDpopProof(key, { htm: 'POST', htu: 'https://gw.lab.example/v1/session' }, 0));
    const b = decodeJwt(await createDpopProof(key, { htm: 'POST', htu: 'https://gw.lab.example/v1/session' }, 0));
    expect(Object.keys(a).sort()).toEqual(['htm', 'htu', 'iat', 'jti']);
    expect(a.jti).not.toBe(b.jti);
  });

  it('never puts private key material in the header', async () => {
    const key = await generateTestDeviceKey();
    const header = decodeProtectedHeader(await createDpopProof(key, { htm: 'GET', htu: 'https://gw.lab.example/' }, 0));
    expect(Object.keys(header.jwk ?? {}).sort()).toEqual(['crv', 'kty', 'x', 'y']);
  });
});
