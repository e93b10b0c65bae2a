import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { PostureReportClaims } from '../../shared/device';
import { PASSING_CHECKS } from '../testing/device-client';
import { deviceVerdict, PostureError, POSTURE_TYP, verifyPostureReport } from './posture';

/**
 * verifyPostureReport called directly (no gateway): every refusal by its exact detail, at its boundary.
 * The whole-gateway suites (posture.test.ts, posture.attack.test.ts) prove the route maps a
 * PostureError to a 400 and records nothing.
 */

interface Device {
  readonly privateKey: CryptoKey;
  readonly jwk: JWK;
  readonly jkt: string;
}

async function device(alg: 'ES256' | 'EdDSA' = 'ES256'): Promise<Device> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk, 'sha256') };
}

/** A clock on an exact second, so the ±120 s bound is tested to the second. */
const NOW = 1_800_000_000;

function claims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    nonce: 'n'.repeat(16),
    iat: NOW,
    deviceId: 'laptop-42',
    assurance: 'software',
    platform: 'linux',
    appVersion: '1.4.2',
    checks: PASSING_CHECKS.map((check) => ({ ...check })),
    ...overrides,
  };
}

function sign(
  by: Device,
  payload: Record<string, unknown> = claims(),
  header: Record<string, unknown> = { alg: 'ES256', typ: POSTURE_TYP },
): Promise<string> {
  return new SignJWT(payload).setProtectedHeader(header as never).sign(by.privateKey);
}

async function refusal(report: unknown, by: Device): Promise<string> {
  const error = await verifyPostureReport(report, by.jwk, by.jkt).then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(PostureError);
  const posture = error as PostureError;
  expect(posture.name).toBe('PostureError');
  expect(posture.message).toBe(posture.detail);
  return posture.detail;
}

let es: Device;
beforeAll(async () => {
  es = await device();
});
afterEach(() => {
  vi.useRealTimers();
});

function at(seconds: number) {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(seconds * 1000);
}

describe('verifyPostureReport: the report as a JWS', () => {
  it('accepts a fresh report signed by the device key and returns its claims', async () => {
    at(NOW);
    const report = await sign(es);
    expect(await verifyPostureReport(report, es.jwk, es.jkt)).toEqual(claims());
  });

  it('accepts a report that names the DPoP key in its header', async () => {
    at(NOW);
    const report = await sign(es, claims(), { alg: 'ES256', typ: POSTURE_TYP, jwk: es.jwk });
    expect((await verifyPostureReport(report, es.jwk, es.jkt)).deviceId).toBe('laptop-42');
  });

  it('accepts an EdDSA report from an Ed25519 device key', async () => {
    at(NOW);
    const ed = await device('EdDSA');
    const report = await sign(ed, claims(), { alg: 'EdDSA', typ: POSTURE_TYP });
    expect((await verifyPostureReport(report, ed.jwk, ed.jkt)).iat).toBe(NOW);
  });

  it.each([
    ['a number', 42],
    ['undefined', undefined],
    ['an empty string', ''],
  ])('refuses %s as the report', async (_name, report) => {
    expect(await refusal(report, es)).toBe('body.posture must be a compact JWS');
  });

  it.each([
    ['one segment', 'abc'],
    ['a header that is not JSON', 'bm90LWpzb24.e30.c2ln'],
  ])('refuses %s as not a JWS', async (_name, report) => {
    expect(await refusal(report, es)).toBe('posture report is not a JWS');
  });

  it.each([
    ['another typ', { alg: 'ES256', typ: 'dpop+jwt' }],
    ['no typ', { alg: 'ES256' }],
  ])('refuses %s', async (_name, header) => {
    expect(await refusal(await sign(es, claims(), header), es)).toBe('posture report typ must be "posture+jwt"');
  });

  it.each([
    ['RS256', 'eyJhbGciOiJSUzI1NiIsInR5cCI6InBvc3R1cmUrand0In0'],
    ['no alg', 'eyJ0eXAiOiJwb3N0dXJlK2p3dCJ9'],
    ['an empty alg', 'eyJhbGciOiIiLCJ0eXAiOiJwb3N0dXJlK2p3dCJ9'],
  ])('refuses %s before looking at the signature', async (_name, header) => {
    const report = `${header}.${Buffer.from(JSON.stringify(claims())).toString('base64url')}.c2ln`;
    expect(await refusal(report, es)).toBe('posture report alg must be one of ES256, EdDSA');
  });

  it('refuses a report whose header names another key than the DPoP proof, even if that key signed it', async () => {
    at(NOW);
    const other = await device();
    const report = await sign(other, claims(), { alg: 'ES256', typ: POSTURE_TYP, jwk: other.jwk });
    expect(await refusal(report, es)).toBe('posture report is signed by another key than the DPoP proof');
  });

  it('refuses a report signed by another key', async () => {
    at(NOW);
    const report = await sign(await device());
    expect(await refusal(report, es)).toBe(
      'posture report rejected (it must be signed by the DPoP key): signature does not verify',
    );
  });

  it('refuses a report whose alg does not fit the device key', async () => {
    at(NOW);
    const ed = await device('EdDSA');
    const report = await sign(ed, claims(), { alg: 'EdDSA', typ: POSTURE_TYP });
    expect(await refusal(report, es)).toMatch(/^posture report rejected \(it must be signed by the DPoP key\): /);
  });
});

describe('verifyPostureReport: the checks it names', () => {
  const signed = (checks: unknown) => sign(es, claims({ checks }));
  const check = (id: string, status = 'pass') => ({ id, status, detail: '', remediation: '' });

  it('refuses an unknown check, naming the known ones', async () => {
    expect(await refusal(await signed([check('vibes')]), es)).toBe(
      'posture report names an unknown check "vibes"; known checks: os-version, disk-encryption, screen-lock, firewall, managed, app-integrity',
    );
  });

  it('refuses a check reported twice with the same status', async () => {
    expect(await refusal(await signed([check('firewall', 'fail'), check('firewall', 'fail')]), es)).toBe(
      'posture check "firewall" is reported twice; each check may appear once',
    );
  });

  it('refuses a check reported both fail and pass as contradictory', async () => {
    expect(await refusal(await signed([check('firewall', 'fail'), check('firewall', 'pass')]), es)).toBe(
      'posture report is contradictory: check "firewall" is reported both fail and pass',
    );
  });

  it('does not take two different checks for one', async () => {
    at(NOW);
    const report = await signed([check('firewall', 'fail'), check('managed', 'fail')]);
    expect((await verifyPostureReport(report, es.jwk, es.jkt)).checks).toHaveLength(2);
  });

  it.each([
    [
      'checks that are not a list',
      5,
      'posture report claims are invalid: checks: Invalid input: expected array, received number',
    ],
    [
      'a check that is not an object',
      [null],
      'posture report claims are invalid: checks.0: Invalid input: expected object, received null',
    ],
    [
      'a check id that is not text',
      [{ id: 7, status: 'pass', detail: '', remediation: '' }],
      'posture report claims are invalid: checks.0.id: Invalid option: expected one of "os-version"|"disk-encryption"|"screen-lock"|"firewall"|"managed"|"app-integrity"',
    ],
  ])('leaves %s to the claims schema', async (_name, checks, detail) => {
    expect(await refusal(await signed(checks), es)).toBe(detail);
  });
});

describe('verifyPostureReport: the claims', () => {
  it('names every invalid claim by its path, separated by "; "', async () => {
    const report = await sign(es, claims({ nonce: 'short', platform: 'beos' }));
    expect(await refusal(report, es)).toBe(
      'posture report claims are invalid: nonce: Too small: expected string to have >=16 characters; platform: Invalid option: expected one of "linux"|"darwin"|"win32"',
    );
  });

  const idRefusal =
    'posture report deviceId must be 1-128 printable characters without spaces and must not start with "tpm-ek:" (the id the gateway gives only to a device whose TPM it verified)';

  it.each([
    ['the TPM-verified namespace', 'tpm-ek:abc'],
    ['a leading space', ' laptop'],
    ['a trailing space', 'laptop '],
    ['a control character', 'lap\x7ftop'],
    ['a line feed before the namespace', 'x\ntpm-ek:abc'],
    ['129 characters', 'x'.repeat(129)],
  ])('refuses a deviceId with %s', async (_name, deviceId) => {
    expect(await refusal(await sign(es, claims({ deviceId })), es)).toBe(idRefusal);
  });

  it.each([
    ['128 characters', 'x'.repeat(128)],
    ['one character', 'x'],
    ['the printable ends ! and ~', '!~'],
    ['the namespace later in the id', 'x-tpm-ek:abc'],
  ])('accepts a deviceId of %s', async (_name, deviceId) => {
    at(NOW);
    expect((await verifyPostureReport(await sign(es, claims({ deviceId })), es.jwk, es.jkt)).deviceId).toBe(deviceId);
  });

  it('bounds appVersion at 100 characters', async () => {
    at(NOW);
    const ok = await sign(es, claims({ appVersion: 'v'.repeat(100) }));
    expect((await verifyPostureReport(ok, es.jwk, es.jkt)).appVersion).toHaveLength(100);
    const over = await sign(es, claims({ appVersion: 'v'.repeat(101) }));
    expect(await refusal(over, es)).toBe('posture report appVersion is longer than 100 characters');
  });

  it('bounds each check detail and remediation at 1,000 characters, naming the first one over', async () => {
    at(NOW);
    const withText = (index: number, field: 'detail' | 'remediation', length: number) =>
      claims({
        checks: PASSING_CHECKS.map((check, i) => (i === index ? { ...check, [field]: 't'.repeat(length) } : check)),
      });
    const ok = await sign(es, withText(2, 'remediation', 1000));
    expect((await verifyPostureReport(ok, es.jwk, es.jkt)).checks[2]!.remediation).toHaveLength(1000);
    expect(await verifyPostureReport(await sign(es, withText(0, 'detail', 1000)), es.jwk, es.jkt)).toBeDefined();
    expect(await refusal(await sign(es, withText(2, 'remediation', 1001)), es)).toBe(
      'posture report checks.2.remediation is longer than 1000 characters',
    );
    expect(await refusal(await sign(es, withText(3, 'detail', 1001)), es)).toBe(
      'posture report checks.3.detail is longer than 1000 characters',
    );
  });

  it.each([
    ['120 s old', NOW - 120, true],
    ['121 s old', NOW - 121, false],
    ['120 s ahead', NOW + 120, true],
    ['121 s ahead', NOW + 121, false],
  ])('takes a report dated %s: %s', async (_name, iat, accepted) => {
    at(NOW);
    const report = await sign(es, claims({ iat }));
    if (accepted) expect((await verifyPostureReport(report, es.jwk, es.jkt)).iat).toBe(iat);
    else expect(await refusal(report, es)).toBe('posture report iat is too far from the current time');
  });
});

describe('deviceVerdict', () => {
  const report = (checks: PostureReportClaims['checks']): PostureReportClaims => ({
    nonce: 'n'.repeat(16),
    iat: NOW,
    deviceId: 'laptop-42',
    assurance: 'hardware',
    platform: 'linux',
    appVersion: '1',
    checks,
  });

  it('is compliant when every required check passes, and carries the id, the assurance and the checks', () => {
    const checks = PASSING_CHECKS.map((check) => ({ ...check }));
    expect(deviceVerdict(report(checks), ['os-version', 'firewall'], 'software')).toEqual({
      id: 'laptop-42',
      assurance: 'software',
      compliant: true,
      failedChecks: [],
      checks,
    });
  });

  it('fails a required check reported fail, unknown or not at all, in the order required', () => {
    const checks = PASSING_CHECKS.filter((check) => check.id !== 'managed').map((check) =>
      check.id === 'firewall'
        ? { ...check, status: 'fail' as const }
        : check.id === 'screen-lock'
          ? { ...check, status: 'unknown' as const }
          : check,
    );
    const verdict = deviceVerdict(report(checks), ['managed', 'firewall', 'os-version', 'screen-lock'], 'hardware');
    expect(verdict.compliant).toBe(false);
    expect(verdict.failedChecks).toEqual(['managed', 'firewall', 'screen-lock']);
  });
});
