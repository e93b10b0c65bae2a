import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGatewayDatabase } from '../../store/database';
import { createTestCa } from '../../testing/device-certificates';
import { DeviceCertificateVerifier } from './device-certificate';
import { OPEN_ENROLMENT } from './enrolment-policy';
import type { EnrolmentStore } from './enrolments';
import { deviceTrustFromEnvironment, openDeviceTrust } from './options';
import { InMemoryPendingActivations } from './pending-activations';
import { TpmAttestationVerifier } from './tpm-attestation';

const dir = mkdtempSync(join(tmpdir(), 'clearance-trust-env-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('deviceTrustFromEnvironment (npm run stack)', () => {
  it('is undefined when nothing is set, so the gateway keeps its open default', () => {
    expect(deviceTrustFromEnvironment({})).toBeUndefined();
    expect(deviceTrustFromEnvironment({ CLEARANCE_TPM_ROOTS: '', CLEARANCE_DEVICE_CA: '' })).toBeUndefined();
    expect(deviceTrustFromEnvironment({ CLEARANCE_DEVICE_CERT_HEADER_FORMAT: 'pem' })).toBeUndefined();
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
    ).toStrictEqual({
      enrolmentPolicy: 'certificate+tpm',
      tpmManufacturerRoots: 'ROOTS',
      deviceCertificates: { ca: 'CA', trustedProxy: { addresses: ['127.0.0.1', '::1'], format: 'client-cert' } },
    });
  });

  it('sets only what is configured', () => {
    writeFileSync(join(dir, 'roots.pem'), 'ROOTS');
    writeFileSync(join(dir, 'ca.pem'), 'CA');
    expect(deviceTrustFromEnvironment({ CLEARANCE_ENROLMENT_POLICY: 'approval' })).toStrictEqual({
      enrolmentPolicy: 'approval',
    });
    expect(deviceTrustFromEnvironment({ CLEARANCE_TPM_ROOTS: join(dir, 'roots.pem') })).toStrictEqual({
      tpmManufacturerRoots: 'ROOTS',
    });
    expect(
      deviceTrustFromEnvironment({ CLEARANCE_DEVICE_CA: join(dir, 'ca.pem'), CLEARANCE_DEVICE_CERT_PROXY: ' , ' }),
    ).toStrictEqual({ deviceCertificates: { ca: 'CA' } });
  });

  it('reads the proxy list without blanks, and the header format only when it is given', () => {
    writeFileSync(join(dir, 'ca.pem'), 'CA');
    expect(
      deviceTrustFromEnvironment({
        CLEARANCE_DEVICE_CA: join(dir, 'ca.pem'),
        CLEARANCE_DEVICE_CERT_PROXY: ' 10.0.0.1 ,, fd00::2 ,',
      }),
    ).toStrictEqual({ deviceCertificates: { ca: 'CA', trustedProxy: { addresses: ['10.0.0.1', 'fd00::2'] } } });
    for (const format of ['xfcc', 'pem'] as const) {
      expect(
        deviceTrustFromEnvironment({
          CLEARANCE_DEVICE_CA: join(dir, 'ca.pem'),
          CLEARANCE_DEVICE_CERT_PROXY: '10.0.0.1',
          CLEARANCE_DEVICE_CERT_HEADER_FORMAT: format,
        }),
      ).toStrictEqual({ deviceCertificates: { ca: 'CA', trustedProxy: { addresses: ['10.0.0.1'], format } } });
    }
  });

  it('refuses a file it cannot read, naming the variable, the path and the cause', () => {
    const missing = join(dir, 'missing.pem');
    let thrown: unknown;
    try {
      deviceTrustFromEnvironment({ CLEARANCE_DEVICE_CA: missing });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(Error);
    const error = thrown as Error;
    expect(error.message).toMatch(new RegExp(`^CLEARANCE_DEVICE_CA: cannot read ${missing}: ENOENT: no such file`));
    expect((error.cause as NodeJS.ErrnoException).code).toBe('ENOENT');
    expect(() => deviceTrustFromEnvironment({ CLEARANCE_TPM_ROOTS: missing })).toThrow(
      `CLEARANCE_TPM_ROOTS: cannot read ${missing}: `,
    );
  });

  it('refuses an unknown header format, and a proxy without a CA', () => {
    expect(() => deviceTrustFromEnvironment({ CLEARANCE_DEVICE_CERT_HEADER_FORMAT: 'envoy' })).toThrow(
      new Error('CLEARANCE_DEVICE_CERT_HEADER_FORMAT must be xfcc, client-cert or pem, got "envoy"'),
    );
    expect(() => deviceTrustFromEnvironment({ CLEARANCE_DEVICE_CERT_HEADER_FORMAT: '' })).toThrow(
      new Error('CLEARANCE_DEVICE_CERT_HEADER_FORMAT must be xfcc, client-cert or pem, got ""'),
    );
    expect(() => deviceTrustFromEnvironment({ CLEARANCE_DEVICE_CERT_PROXY: '10.0.0.1' })).toThrow(
      new Error('CLEARANCE_DEVICE_CERT_PROXY needs CLEARANCE_DEVICE_CA (the CA the forwarded certificates chain to)'),
    );
  });
});

describe('openDeviceTrust', () => {
  let caPem: string;
  beforeAll(async () => {
    caPem = (await createTestCa('Trust Options CA')).certPem;
  });

  const store = (): EnrolmentStore => ({
    upsert: () => Promise.reject(new Error('unused')),
    find: () => Promise.resolve(undefined),
    list: () => Promise.resolve([]),
    decide: () => Promise.resolve(undefined),
  });

  it('is open, with neither verifier, when nothing is configured', () => {
    const enrolments = store();
    const trust = openDeviceTrust({ enrolments }, undefined, dir);
    expect(trust.policy).toBe(OPEN_ENROLMENT);
    expect(trust.enrolments).toBe(enrolments);
    expect('tpm' in trust).toBe(false);
    expect('certificates' in trust).toBe(false);
    trust.close();
    expect(openDeviceTrust(undefined, undefined, join(dir, 'none')).policy).toBe(OPEN_ENROLMENT);
  });

  it('reads the policy, and builds the TPM verifier with the activation store it is given', () => {
    const activations = new InMemoryPendingActivations();
    const trust = openDeviceTrust(
      { enrolmentPolicy: 'tpm+approval', tpmManufacturerRoots: caPem, activations, enrolments: store() },
      undefined,
      dir,
    );
    expect(trust.policy.name).toBe('tpm+approval');
    expect(trust.tpm).toBeInstanceOf(TpmAttestationVerifier);
    expect(trust.tpm!['pending']).toBe(activations);
    expect('certificates' in trust).toBe(false);
  });

  it('builds the device-certificate verifier from the CA', () => {
    const trust = openDeviceTrust(
      { enrolmentPolicy: ['certificate'], deviceCertificates: { ca: caPem }, enrolments: store() },
      undefined,
      dir,
    );
    expect(trust.certificates).toBeInstanceOf(DeviceCertificateVerifier);
    expect(trust.certificates!.caPem).toHaveLength(1);
    expect('tpm' in trust).toBe(false);
  });

  it('refuses a policy that needs a verifier which is not configured', () => {
    expect(() => openDeviceTrust({ enrolmentPolicy: 'tpm', enrolments: store() }, undefined, dir)).toThrow(
      new Error('The enrolment policy requires TPM attestation but no TPM manufacturer roots are configured.'),
    );
    expect(() =>
      openDeviceTrust(
        { enrolmentPolicy: 'certificate+tpm', tpmManufacturerRoots: caPem, enrolments: store() },
        undefined,
        dir,
      ),
    ).toThrow(
      new Error(
        'The enrolment policy requires a managed-device certificate but no device-certificate CA is configured.',
      ),
    );
  });

  it('refuses an unreadable policy or roots', () => {
    expect(() => openDeviceTrust({ enrolmentPolicy: 'tmp' }, undefined, dir)).toThrow(/"tmp"/);
    expect(() => openDeviceTrust({ tpmManufacturerRoots: 'not PEM' }, undefined, dir)).toThrow(
      new Error('The TPM manufacturer roots holds no PEM certificate'),
    );
  });

  it('keeps enrolments in the gateway database it is given, and leaves it open on close', async () => {
    const database = openGatewayDatabase(':memory:');
    const stateDir = join(dir, 'shared');
    const trust = openDeviceTrust({}, database, stateDir);
    expect(await trust.enrolments.list()).toEqual([]);
    trust.close();
    expect(database.connection.isOpen).toBe(true);
    expect(
      database.connection.prepare("SELECT name FROM sqlite_master WHERE name = 'device_enrolments'").get(),
    ).toEqual({
      name: 'device_enrolments',
    });
    expect(existsSync(join(stateDir, 'enrolments.db'))).toBe(false);
    database.close();
  });

  it('opens its own enrolments.db in the state folder without a database, and closes it on close', async () => {
    const stateDir = join(dir, 'own');
    const trust = openDeviceTrust(undefined, undefined, stateDir);
    expect(existsSync(join(stateDir, 'enrolments.db'))).toBe(true);
    expect(await trust.enrolments.list()).toEqual([]);
    const connection = (trust.enrolments as unknown as { db: { connection: { isOpen: boolean } } }).db.connection;
    expect(connection.isOpen).toBe(true);
    trust.close();
    expect(connection.isOpen).toBe(false);
  });
});
