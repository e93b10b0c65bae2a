import { base64url, decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayHarness, type GatewayHarness } from '../../gateway/testing/gateway-harness';
import { testPersonas } from '../../gateway/testing/identity-provider';
import type { GatewayTestClient } from '../../gateway/testing/device-client';
import { EntitlementError, type EntitlementErrorCode } from './errors';
import { EntitlementKeySet, jwksUrlFor } from './jwks';
import { verifyEntitlementDocument, type EntitlementVerifyOptions } from './verify';

/**
 * The client's verifier against documents the real gateway signed in process: the fixtures' signer
 * cannot drift from the gateway's header, claims or key publication without this failing.
 */
let harness: GatewayHarness;
let avery: GatewayTestClient;
let mina: GatewayTestClient;

beforeAll(async () => {
  harness = await startGatewayHarness();
  avery = await harness.signIn(testPersonas.usResearcher);
  mina = await harness.signIn(testPersonas.fnResearcher);
});
afterAll(async () => {
  await harness?.close();
});

function optionsFor(
  client: GatewayTestClient,
  overrides: Partial<EntitlementVerifyOptions> = {},
): EntitlementVerifyOptions {
  const keys = new EntitlementKeySet({
    jwksUrl: jwksUrlFor(harness.gateway.url),
    http: (input, init) => fetch(input, init),
    clock: { now: () => Date.now() },
  });
  return {
    resolveKey: keys.resolver({ network: true }),
    issuer: harness.gateway.url,
    expectedSub: decodeJwt(client.accessToken!).sub!,
    expectedJkt: client.device.jkt,
    now: Date.now(),
    ...overrides,
  };
}

async function expectRefused(
  jws: string,
  options: EntitlementVerifyOptions,
  code: EntitlementErrorCode,
): Promise<void> {
  const refusal = await verifyEntitlementDocument(jws, options).then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(refusal).toBeInstanceOf(EntitlementError);
  expect((refusal as EntitlementError).code).toBe(code);
}

describe('a document signed by the real gateway', () => {
  it('verifies with the keys the gateway publishes, for the user and device it was issued to', async () => {
    const { jws } = await avery.entitlements();
    const verified = await verifyEntitlementDocument(jws, optionsFor(avery));
    expect(verified.jws).toBe(jws);
    expect(verified.document.sub).toBe(decodeJwt(avery.accessToken!).sub);
    expect(verified.document.cnf.jkt).toBe(avery.device.jkt);
    expect(verified.document.iss).toBe(harness.gateway.url);
    expect(verified.alg).toBe('ES256');
    expect(verified.document.models.find((model) => model.id === 'mythos-5')?.status).toBe('allowed');
  });

  it('is refused when one byte of its payload is changed', async () => {
    const { jws } = await avery.entitlements();
    const parts = jws.split('.');
    const payload = new TextDecoder().decode(base64url.decode(parts[1]!));
    const widened = payload.replace('"denied"', '"allowed"').replace('"hidden"', '"allowed"');
    const forged = [parts[0], base64url.encode(widened === payload ? `${payload} ` : widened), parts[2]].join('.');
    await expectRefused(forged, optionsFor(avery), 'SIGNATURE');
  });

  it("is refused for another user (Mina's document replayed to Avery's app)", async () => {
    const { jws } = await mina.entitlements();
    await expectRefused(jws, optionsFor(avery), 'SUBJECT');
  });

  it('is refused on another device', async () => {
    const { jws } = await avery.entitlements();
    await expectRefused(jws, optionsFor(avery, { expectedJkt: mina.device.jkt }), 'DEVICE_BINDING');
  });

  it('is refused from another issuer', async () => {
    const { jws } = await avery.entitlements();
    await expectRefused(jws, optionsFor(avery, { issuer: 'https://gateway.other.example' }), 'ISSUER');
  });

  it('is refused once a later version was seen', async () => {
    const { jws, claims } = await avery.entitlements();
    await expectRefused(jws, optionsFor(avery, { highestSeenVer: (claims.ver as number) + 1 }), 'VERSION_REPLAYED');
  });

  it("is refused when it is really the gateway's session token (another key, another typ)", async () => {
    const refusal = await verifyEntitlementDocument(avery.accessToken!, optionsFor(avery)).then(
      () => undefined,
      (error: unknown) => error as EntitlementError,
    );
    expect(refusal).toBeInstanceOf(EntitlementError);
    expect(['TYPE', 'KEY_UNKNOWN']).toContain(refusal!.code);
  });
});
