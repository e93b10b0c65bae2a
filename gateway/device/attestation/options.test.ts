import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { deviceTrustFromEnvironment } from './options';

const dir = mkdtempSync(join(tmpdir(), 'clearance-trust-env-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('deviceTrustFromEnvironment (npm run stack)', () => {
  it('is undefined when nothing is set, so the gateway keeps its open default', () => {
    expect(deviceTrustFromEnvironment({})).toBeUndefined();
  });

  it('reads the policy, the TPM roots and the device CA with its proxy from files', () => {
    writeFileSync(join(dir, 'roots.pem'), 'ROOTS');
    writeFileSync(join(dir, 'ca.pem'), 'CA');
    expect(
      deviceTrustFromEnvironment({
        CLEARANCE_ENROLMENT_POLICY: 'certificate+tpm',
        CLEARANCE_TPM_ROOTS: join(dir, 'roots.pem'),
        CLEARANCE_DEVICE_CA: join(dir, 'ca.pem'),
        CLEARANCE_DEVICE_CERT_PROXY: '127.0.0.1, ::1',
        CLEARANCE_DEVICE_CERT_HEADER_FORMAT: 'client-cert',
      }),
    ).toEqual({
      enrolmentPolicy: 'certificate+tpm',
      tpmManufacturerRoots: 'ROOTS',
      deviceCertificates: { ca: 'CA', trustedProxy: { addresses: ['127.0.0.1', '::1'], format: 'client-cert' } },
    });
  });

  it('refuses a file it cannot read, an unknown header format, and a proxy without a CA', () => {
    expect(() => deviceTrustFromEnvironment({ CLEARANCE_DEVICE_CA: join(dir, 'missing.pem') })).toThrow(
      /CLEARANCE_DEVICE_CA: cannot read/,
    );
    expect(() => deviceTrustFromEnvironment({ CLEARANCE_DEVICE_CERT_HEADER_FORMAT: 'envoy' })).toThrow(
      /xfcc, client-cert or pem/,
    );
    expect(() => deviceTrustFromEnvironment({ CLEARANCE_DEVICE_CERT_PROXY: '10.0.0.1' })).toThrow(
      /needs CLEARANCE_DEVICE_CA/,
    );
  });
});
