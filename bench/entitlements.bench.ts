import { bench, describe } from 'vitest';
import { documentClaims, makeSigner, signClaims, TEST_ISSUER } from '../main/entitlements/test-gateway';
import { verifyEntitlementDocument } from '../main/entitlements/verify';

/** Verifying the signed entitlement document, as the client does on every refresh. */
const signer = await makeSigner('ES256', 'bench');
const nowSeconds = Math.floor(Date.now() / 1000);
const jws = await signClaims(signer, documentClaims({ sub: 'user-1', jkt: 'jkt-1', ver: 4182, nowSeconds }));

describe('entitlement document', () => {
  bench('verify ES256 JWS, RFC 8725 checks and schema', async () => {
    await verifyEntitlementDocument(jws, {
      resolveKey: async () => signer.publicJwk,
      issuer: TEST_ISSUER,
      expectedSub: 'user-1',
      expectedJkt: 'jkt-1',
      now: Date.now(),
      highestSeenVer: 4000,
    });
  });
});
