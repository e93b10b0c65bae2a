import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { AuthError } from './errors';
import { DEVICE_KEY_ALGORITHMS, DpopVerifier, type DpopExpectations } from './dpop';

const NOW = 1_800_000_000;
const URL_ = 'https://gw.example/v1/entitlements';
const expected: DpopExpectations = { method: 'GET', urls: [URL_] };

interface Key {
  readonly privateKey: CryptoKey;
  readonly jwk: JWK;
}

async function deviceKey(alg: 'ES256' | 'EdDSA' = 'ES256'): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, jwk: await exportJWK(publicKey) };
}

let counter = 0;
const freshJti = () => `jti-${String(++counter).padStart(16, '0')}`;

async function proof(
  key: Key,
  options: {
    readonly claims?: Record<string, unknown>;
    readonly header?: Record<string, unknown>;
    readonly alg?: string;
    readonly omit?: readonly string[];
  } = {},
): Promise<string> {
  const claims: Record<string, unknown> = { jti: freshJti(), htm: 'GET', htu: URL_, iat: NOW, ...options.claims };
  for (const name of options.omit ?? []) delete claims[name];
  const alg = options.alg ?? (key.jwk.kty === 'OKP' ? 'EdDSA' : 'ES256');
  return new SignJWT(claims)
    .setProtectedHeader({ alg, typ: 'dpop+jwt', jwk: key.jwk, ...options.header })
    .sign(key.privateKey);
}

const verifier = (options: ConstructorParameters<typeof DpopVerifier>[0] = {}) =>
  new DpopVerifier({ clock: () => NOW, ...options });

/** Asserts the refusal's OAuth error code and the exact check that failed. */
async function expectRefused(promise: Promise<unknown>, error: AuthError['error'], detail: string): Promise<void> {
  const refusal = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(refusal).toBeInstanceOf(AuthError);
  expect((refusal as AuthError).error).toBe(error);
  expect((refusal as AuthError).detail).toBe(detail);
  expect((refusal as AuthError).status).toBe(401);
  expect((refusal as AuthError).scheme).toBe('DPoP');
}

describe('DpopVerifier', () => {
  it('accepts a fresh ES256 proof and returns its key thumbprint, jti and iat', async () => {
    const key = await deviceKey();
    const header = await proof(key, { claims: { jti: 'a'.repeat(16) } });
    const result = await verifier().verify(header, expected);
    expect(result).toEqual({
      jkt: await calculateJwkThumbprint(key.jwk, 'sha256'),
      jwk: key.jwk,
      jti: 'a'.repeat(16),
      iat: NOW,
    });
  });

  it('accepts EdDSA proofs too, and only ES256 and EdDSA', async () => {
    expect(DEVICE_KEY_ALGORITHMS).toEqual(['ES256', 'EdDSA']);
    const key = await deviceKey('EdDSA');
    await expect(verifier().verify(await proof(key), expected)).resolves.toMatchObject({ iat: NOW });
  });

  it('refuses a missing or empty header', async () => {
    await expectRefused(verifier().verify(undefined, expected), 'invalid_dpop_proof', 'missing DPoP proof header');
    await expectRefused(verifier().verify('', expected), 'invalid_dpop_proof', 'missing DPoP proof header');
  });

  it('refuses more than one DPoP header (an array, or joined with a comma)', async () => {
    const one = await proof(await deviceKey());
    await expectRefused(verifier().verify([one, one], expected), 'invalid_dpop_proof', 'more than one DPoP header');
    await expectRefused(
      verifier().verify(`${one}, ${one}`, expected),
      'invalid_dpop_proof',
      'more than one DPoP header',
    );
  });

  it('refuses a header that is not a JWT', async () => {
    await expectRefused(verifier().verify('not-a-jwt', expected), 'invalid_dpop_proof', 'DPoP proof is not a JWT');
  });

  it('refuses a proof whose typ is not dpop+jwt', async () => {
    const header = await proof(await deviceKey(), { header: { typ: 'JWT' } });
    await expectRefused(verifier().verify(header, expected), 'invalid_dpop_proof', 'DPoP proof typ must be "dpop+jwt"');
  });

  it('refuses an algorithm outside ES256 and EdDSA, and alg none', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES384', { extractable: true });
    const header = await new SignJWT({ jti: freshJti(), htm: 'GET', htu: URL_, iat: NOW })
      .setProtectedHeader({ alg: 'ES384', typ: 'dpop+jwt', jwk: await exportJWK(publicKey) })
      .sign(privateKey);
    await expectRefused(
      verifier().verify(header, expected),
      'invalid_dpop_proof',
      'DPoP proof alg must be one of ES256, EdDSA',
    );
    const key = await deviceKey();
    const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const unsigned = `${b64({ alg: 'none', typ: 'dpop+jwt', jwk: key.jwk })}.${b64({ jti: freshJti(), htm: 'GET', htu: URL_, iat: NOW })}.`;
    await expectRefused(
      verifier().verify(unsigned, expected),
      'invalid_dpop_proof',
      'DPoP proof alg must be one of ES256, EdDSA',
    );
    const noAlg = `${b64({ typ: 'dpop+jwt', jwk: key.jwk })}.${b64({ iat: NOW })}.`;
    await expectRefused(
      verifier().verify(noAlg, expected),
      'invalid_dpop_proof',
      'DPoP proof alg must be one of ES256, EdDSA',
    );
  });

  it('refuses a proof without a jwk header, or with a non-object jwk', async () => {
    const key = await deviceKey();
    const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const without = `${b64({ alg: 'ES256', typ: 'dpop+jwt' })}.${b64({ iat: NOW })}.sig`;
    await expectRefused(verifier().verify(without, expected), 'invalid_dpop_proof', 'DPoP proof has no jwk header');
    const stringJwk = `${b64({ alg: 'ES256', typ: 'dpop+jwt', jwk: JSON.stringify(key.jwk) })}.${b64({ iat: NOW })}.sig`;
    await expectRefused(verifier().verify(stringJwk, expected), 'invalid_dpop_proof', 'DPoP proof has no jwk header');
  });

  it('refuses a jwk that carries private key material (d, p, q or k)', async () => {
    const key = await deviceKey();
    for (const member of ['d', 'p', 'q', 'k']) {
      const header = await proof(key, { header: { jwk: { ...key.jwk, [member]: 'AAAA' } } });
      await expectRefused(
        verifier().verify(header, expected),
        'invalid_dpop_proof',
        'DPoP proof jwk holds private key material',
      );
    }
  });

  it('refuses a proof signed by another key than the one it names', async () => {
    const key = await deviceKey();
    const other = await deviceKey();
    const header = await proof({ privateKey: other.privateKey, jwk: key.jwk });
    await expectRefused(
      verifier().verify(header, expected),
      'invalid_dpop_proof',
      'DPoP proof rejected: signature does not verify',
    );
  });

  it('refuses a jti that is missing, shorter than 16 or longer than 256 characters', async () => {
    const key = await deviceKey();
    for (const jti of [undefined, 42, 'x'.repeat(15), 'x'.repeat(257)]) {
      const header = await proof(key, { claims: { jti }, omit: jti === undefined ? ['jti'] : [] });
      await expectRefused(
        verifier().verify(header, expected),
        'invalid_dpop_proof',
        'DPoP proof jti is missing or too short',
      );
    }
    await expect(
      verifier().verify(await proof(key, { claims: { jti: 'y'.repeat(256) } }), expected),
    ).resolves.toBeDefined();
  });

  it('refuses a proof without htm, htu or a numeric iat', async () => {
    const key = await deviceKey();
    await expectRefused(
      verifier().verify(await proof(key, { omit: ['htm'] }), expected),
      'invalid_dpop_proof',
      'DPoP proof has no htm',
    );
    await expectRefused(
      verifier().verify(await proof(key, { omit: ['htu'] }), expected),
      'invalid_dpop_proof',
      'DPoP proof has no htu',
    );
    await expectRefused(
      verifier().verify(await proof(key, { omit: ['iat'] }), expected),
      'invalid_dpop_proof',
      'DPoP proof has no iat',
    );
    await expectRefused(
      verifier().verify(await proof(key, { claims: { iat: String(NOW) } }), expected),
      'invalid_dpop_proof',
      'DPoP proof rejected: "iat" claim must be a number (claim "iat")',
    );
  });

  it('refuses a proof made for another method, and compares methods case-insensitively on the request side', async () => {
    const key = await deviceKey();
    await expectRefused(
      verifier().verify(await proof(key, { claims: { htm: 'POST' } }), expected),
      'invalid_dpop_proof',
      'DPoP proof is for POST, not GET',
    );
    await expect(verifier().verify(await proof(key), { ...expected, method: 'get' })).resolves.toBeDefined();
  });

  it('matches htu ignoring query and fragment but not path, host or scheme', async () => {
    const key = await deviceKey();
    await expect(
      verifier().verify(await proof(key, { claims: { htu: `${URL_}?a=1#f` } }), expected),
    ).resolves.toBeDefined();
    await expect(
      verifier().verify(await proof(key, { claims: { htu: 'HTTPS://GW.EXAMPLE:443/v1/entitlements' } }), expected),
    ).resolves.toBeDefined();
    for (const htu of [
      'https://gw.example/v1/models',
      'https://other.example/v1/entitlements',
      'https://gw.example:8443/v1/entitlements',
      'ftp://gw.example/v1/entitlements',
      'not a url',
    ]) {
      await expectRefused(
        verifier().verify(await proof(key, { claims: { htu } }), expected),
        'invalid_dpop_proof',
        'DPoP proof htu does not match this request URI',
      );
    }
  });

  it('accepts a proof for any one of the gateway public origins, over http too', async () => {
    const key = await deviceKey();
    const urls = ['https://gw.example/v1/entitlements', 'http://127.0.0.1:8080/v1/entitlements'];
    await expect(
      verifier().verify(await proof(key, { claims: { htu: urls[1] } }), { method: 'GET', urls }),
    ).resolves.toBeDefined();
  });

  it('refuses a proof dated in the future beyond the clock tolerance, and accepts one at the tolerance', async () => {
    const key = await deviceKey();
    await expectRefused(
      verifier().verify(await proof(key, { claims: { iat: NOW + 6 } }), expected),
      'invalid_dpop_proof',
      'DPoP proof iat is in the future',
    );
    await expectRefused(
      verifier().verify(await proof(key, { claims: { iat: NOW + 3600 } }), expected),
      'invalid_dpop_proof',
      'DPoP proof iat is in the future',
    );
    await expect(verifier().verify(await proof(key, { claims: { iat: NOW + 5 } }), expected)).resolves.toBeDefined();
    await expectRefused(
      verifier({ clockToleranceSeconds: 0 }).verify(await proof(key, { claims: { iat: NOW + 1 } }), expected),
      'invalid_dpop_proof',
      'DPoP proof iat is in the future',
    );
  });

  it('refuses a proof older than the maximum age, and accepts one exactly at it', async () => {
    const key = await deviceKey();
    await expectRefused(
      verifier().verify(await proof(key, { claims: { iat: NOW - 61 } }), expected),
      'invalid_dpop_proof',
      'DPoP proof is too old',
    );
    await expect(verifier().verify(await proof(key, { claims: { iat: NOW - 60 } }), expected)).resolves.toBeDefined();
    await expectRefused(
      verifier({ maxAgeSeconds: 10 }).verify(await proof(key, { claims: { iat: NOW - 11 } }), expected),
      'invalid_dpop_proof',
      'DPoP proof is too old',
    );
  });

  it('binds the proof to the presented access token through ath', async () => {
    const key = await deviceKey();
    const accessToken = 'token-value';
    const ath = createHash('sha256').update(accessToken).digest('base64url');
    await expect(
      verifier().verify(await proof(key, { claims: { ath } }), { ...expected, accessToken }),
    ).resolves.toBeDefined();
    for (const wrong of [undefined, 'A'.repeat(43), 42]) {
      const header = await proof(key, { claims: { ath: wrong }, omit: wrong === undefined ? ['ath'] : [] });
      await expectRefused(
        verifier().verify(header, { ...expected, accessToken }),
        'invalid_dpop_proof',
        'DPoP proof ath does not match the access token',
      );
    }
  });

  it('keeps ath and htu checks exact when they are answered from its caches', async () => {
    const key = await deviceKey();
    const checker = verifier();
    const athOf = (token: string) => createHash('sha256').update(token).digest('base64url');
    for (const token of ['token-a', 'token-b', 'token-a']) {
      await expect(
        checker.verify(await proof(key, { claims: { ath: athOf(token) } }), { ...expected, accessToken: token }),
      ).resolves.toBeDefined();
    }
    // The proof made for token A, presented with token B (both hashes cached): refused.
    await expectRefused(
      checker.verify(await proof(key, { claims: { ath: athOf('token-a') } }), { ...expected, accessToken: 'token-b' }),
      'invalid_dpop_proof',
      'DPoP proof ath does not match the access token',
    );
    // A target seen and normalized before does not make another one pass.
    await expect(checker.verify(await proof(key), expected)).resolves.toBeDefined();
    await expectRefused(
      checker.verify(await proof(key, { claims: { htu: 'https://gw.example/v1/models' } }), expected),
      'invalid_dpop_proof',
      'DPoP proof htu does not match this request URI',
    );
    await expectRefused(
      checker.verify(await proof(key, { claims: { htu: URL_ } }), {
        ...expected,
        urls: ['https://gw.example/v1/models'],
      }),
      'invalid_dpop_proof',
      'DPoP proof htu does not match this request URI',
    );
  });

  it('refuses a malformed ath even when no token is presented', async () => {
    const key = await deviceKey();
    await expectRefused(
      verifier().verify(await proof(key, { claims: { ath: 42 } }), expected),
      'invalid_dpop_proof',
      'DPoP proof ath is malformed',
    );
    await expect(verifier().verify(await proof(key, { claims: { ath: 'abc' } }), expected)).resolves.toBeDefined();
  });

  it('refuses a proof whose key is not the one the token is bound to (cnf.jkt)', async () => {
    const key = await deviceKey();
    const other = await deviceKey();
    const boundJkt = await calculateJwkThumbprint(other.jwk, 'sha256');
    await expectRefused(
      verifier().verify(await proof(key), { ...expected, boundJkt }),
      'invalid_token',
      'DPoP proof key does not match the key the token is bound to (cnf.jkt)',
    );
    const own = await calculateJwkThumbprint(key.jwk, 'sha256');
    await expect(verifier().verify(await proof(key), { ...expected, boundJkt: own })).resolves.toBeDefined();
  });

  it('refuses a replayed proof, and the same jti from another key is not a replay', async () => {
    const key = await deviceKey();
    const other = await deviceKey();
    const dpop = verifier();
    const header = await proof(key, { claims: { jti: 'r'.repeat(20) } });
    await dpop.verify(header, expected);
    await expectRefused(
      dpop.verify(header, expected),
      'invalid_dpop_proof',
      'DPoP proof was already used (jti replay)',
    );
    await expect(dpop.verify(await proof(other, { claims: { jti: 'r'.repeat(20) } }), expected)).resolves.toBeDefined();
  });

  it('remembers a jti until the proof could no longer pass the age check, then forgets it', async () => {
    const key = await deviceKey();
    let now = NOW;
    const dpop = new DpopVerifier({ clock: () => now, maxAgeSeconds: 60, clockToleranceSeconds: 5 });
    const header = await proof(key, { claims: { jti: 's'.repeat(20), iat: NOW } });
    await dpop.verify(header, expected);
    now = NOW + 30;
    await expectRefused(
      dpop.verify(header, expected),
      'invalid_dpop_proof',
      'DPoP proof was already used (jti replay)',
    );
    now = NOW + 60;
    await expectRefused(
      dpop.verify(header, expected),
      'invalid_dpop_proof',
      'DPoP proof was already used (jti replay)',
    );
    // Once the age check alone refuses the proof, the replay cache may forget it.
    now = NOW + 61;
    await expectRefused(dpop.verify(header, expected), 'invalid_dpop_proof', 'DPoP proof is too old');
  });

  it('refuses new proofs while the replay cache is full, and admits them once old entries expire', async () => {
    const key = await deviceKey();
    let now = NOW;
    const dpop = new DpopVerifier({
      clock: () => now,
      replayCacheSize: 2,
      maxAgeSeconds: 60,
      clockToleranceSeconds: 5,
    });
    await dpop.verify(await proof(key, { claims: { iat: NOW } }), expected);
    await dpop.verify(await proof(key, { claims: { iat: NOW } }), expected);
    // A full cache is a quota (429 with Retry-After), not a bad proof.
    await expect(dpop.verify(await proof(key, { claims: { iat: NOW } }), expected)).rejects.toMatchObject({
      name: 'QuotaExceeded',
      scope: 'global',
      detail: 'DPoP replay cache is full; retry shortly.',
    });
    now = NOW + 66;
    await expect(dpop.verify(await proof(key, { claims: { iat: now } }), expected)).resolves.toBeDefined();
  });

  it('refuses a device key over its share of the replay cache while another key goes on', async () => {
    const noisy = await deviceKey();
    const quiet = await deviceKey();
    const dpop = verifier({ replayEntriesPerKey: 2 });
    await dpop.verify(await proof(noisy), expected);
    await dpop.verify(await proof(noisy), expected);
    await expect(dpop.verify(await proof(noisy), expected)).rejects.toMatchObject({
      name: 'QuotaExceeded',
      scope: 'device',
    });
    await expect(dpop.verify(await proof(quiet), expected)).resolves.toBeDefined();
  });

  describe('server nonces', () => {
    it('demands a nonce when configured, with use_dpop_nonce', async () => {
      const key = await deviceKey();
      const dpop = verifier({ requireNonce: true });
      expect(dpop.requireNonce).toBe(true);
      await expectRefused(
        dpop.verify(await proof(key), expected),
        'use_dpop_nonce',
        'Authorization server requires nonce in DPoP proof',
      );
      await expectRefused(
        dpop.verify(await proof(key, { claims: { nonce: 'made-up' } }), expected),
        'use_dpop_nonce',
        'Authorization server requires nonce in DPoP proof',
      );
      await expect(
        dpop.verify(await proof(key, { claims: { nonce: dpop.currentNonce() } }), expected),
      ).resolves.toBeDefined();
    });

    it('does not demand a nonce by default', async () => {
      const dpop = verifier();
      expect(dpop.requireNonce).toBe(false);
      await expect(dpop.verify(await proof(await deviceKey()), expected)).resolves.toBeDefined();
    });

    it('accepts the current and the previous nonce, not an older one', async () => {
      const key = await deviceKey();
      let now = NOW;
      const dpop = new DpopVerifier({ clock: () => now, requireNonce: true, nonceLifetimeSeconds: 100 });
      const first = dpop.currentNonce();
      expect(first).toHaveLength(32);
      now += 100;
      const second = dpop.currentNonce();
      expect(second).not.toBe(first);
      await expect(
        dpop.verify(await proof(key, { claims: { nonce: first, iat: now } }), expected),
      ).resolves.toBeDefined();
      now += 100;
      await expectRefused(
        dpop.verify(await proof(key, { claims: { nonce: first, iat: now } }), expected),
        'use_dpop_nonce',
        'Authorization server requires nonce in DPoP proof',
      );
      await expect(
        dpop.verify(await proof(key, { claims: { nonce: second, iat: now } }), expected),
      ).resolves.toBeDefined();
    });

    it('uses a secret per verifier, so another gateway cannot mint our nonces', () => {
      expect(verifier().currentNonce()).not.toBe(verifier().currentNonce());
    });
  });
});
