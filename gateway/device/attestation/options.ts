import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openGatewayDatabase, type GatewayDatabase } from '../../store/database';
import { OPEN_ENROLMENT, parseEnrolmentPolicy, type EnrolmentPolicy } from './enrolment-policy';
import { TrustBundle } from './certificate-chain';
import { DeviceCertificateVerifier, type DeviceCertificateOptions } from './device-certificate';
import { SqliteEnrolmentStore, type EnrolmentStore } from './enrolments';
import type { PendingActivationStore } from './pending-activations';
import { TpmAttestationVerifier } from './tpm-attestation';

/** How the gateway decides which devices it trusts (GatewayOptions.deviceTrust). */
export interface DeviceTrustOptions {
  /** `open` (the default), or `certificate`, `tpm`, `approval` combined with `+`. */
  readonly enrolmentPolicy?: string | readonly string[];
  /** Where enrolment requests and approvals are kept; default SQLite in the gateway's database. */
  readonly enrolments?: EnrolmentStore;
  /**
   * PEM bundle(s) of TPM manufacturer CA certificates that endorsement key certificates must chain to.
   * Without it no device can attest as `hardware`.
   */
  readonly tpmManufacturerRoots?: string | readonly string[];
  /** Where TPM credentials wait for activation; default this instance's memory (several instances: Redis). */
  readonly activations?: PendingActivationStore;
  /**
   * The organisation's device-certificate CA, and the proxy that may forward client certificates.
   * Without it no device can present a managed-device certificate.
   */
  readonly deviceCertificates?: DeviceCertificateOptions;
}

/** Device trust as the running gateway uses it. */
export interface DeviceTrust {
  readonly policy: EnrolmentPolicy;
  readonly enrolments: EnrolmentStore;
  /** Absent when no manufacturer roots are configured. */
  readonly tpm?: TpmAttestationVerifier;
  /** Absent when no device-certificate CA is configured. */
  readonly certificates?: DeviceCertificateVerifier;
  close(): void;
}

/**
 * Builds the device trust settings; throws (so the gateway does not start) on a policy it cannot read.
 *
 * `database` is the gateway's own SQLite database, absent when shared stores were given; then a
 * separate file in `stateDir` keeps enrolments unless a store is passed.
 */
export function openDeviceTrust(
  options: DeviceTrustOptions | undefined,
  database: GatewayDatabase | undefined,
  stateDir: string,
): DeviceTrust {
  const policy =
    options?.enrolmentPolicy === undefined ? OPEN_ENROLMENT : parseEnrolmentPolicy(options.enrolmentPolicy);
  const tpm =
    options?.tpmManufacturerRoots === undefined
      ? undefined
      : new TpmAttestationVerifier(
          TrustBundle.fromPem(options.tpmManufacturerRoots, 'The TPM manufacturer roots'),
          options.activations,
        );
  if (policy.requirements.has('tpm') && !tpm) {
    throw new Error('The enrolment policy requires TPM attestation but no TPM manufacturer roots are configured.');
  }
  const certificates =
    options?.deviceCertificates === undefined ? undefined : new DeviceCertificateVerifier(options.deviceCertificates);
  if (policy.requirements.has('certificate') && !certificates) {
    throw new Error(
      'The enrolment policy requires a managed-device certificate but no device-certificate CA is configured.',
    );
  }
  const trust = { policy, ...(tpm ? { tpm } : {}), ...(certificates ? { certificates } : {}) };
  if (options?.enrolments) return { ...trust, enrolments: options.enrolments, close: () => {} };
  const own = database ? undefined : openGatewayDatabase(join(stateDir, 'enrolments.db'));
  return { ...trust, enrolments: new SqliteEnrolmentStore(database ?? own!), close: () => own?.close() };
}

/**
 * Device trust from `npm run stack`'s environment: `CLEARANCE_ENROLMENT_POLICY`,
 * `CLEARANCE_TPM_ROOTS` (a PEM file of TPM manufacturer CAs), `CLEARANCE_DEVICE_CA` (a PEM file of
 * the device-certificate CA), `CLEARANCE_DEVICE_CERT_PROXY` (comma-separated proxy IP addresses)
 * and `CLEARANCE_DEVICE_CERT_HEADER_FORMAT` (`xfcc`, `client-cert` or `pem`). Undefined when none is set.
 */
export function deviceTrustFromEnvironment(
  env: Readonly<Record<string, string | undefined>>,
): DeviceTrustOptions | undefined {
  const read = (name: string) => {
    const path = env[name];
    if (!path) return undefined;
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      throw new Error(`${name}: cannot read ${path}: ${(error as Error).message}`, { cause: error });
    }
  };
  const policy = env.CLEARANCE_ENROLMENT_POLICY;
  const roots = read('CLEARANCE_TPM_ROOTS');
  const ca = read('CLEARANCE_DEVICE_CA');
  const proxies = (env.CLEARANCE_DEVICE_CERT_PROXY ?? '')
    .split(',')
    .map((address) => address.trim())
    .filter(Boolean);
  const format = env.CLEARANCE_DEVICE_CERT_HEADER_FORMAT;
  if (format !== undefined && !['xfcc', 'client-cert', 'pem'].includes(format)) {
    throw new Error(`CLEARANCE_DEVICE_CERT_HEADER_FORMAT must be xfcc, client-cert or pem, got "${format}"`);
  }
  if (proxies.length > 0 && ca === undefined) {
    throw new Error(
      'CLEARANCE_DEVICE_CERT_PROXY needs CLEARANCE_DEVICE_CA (the CA the forwarded certificates chain to)',
    );
  }
  if (policy === undefined && roots === undefined && ca === undefined) return undefined;
  return {
    ...(policy !== undefined ? { enrolmentPolicy: policy } : {}),
    ...(roots !== undefined ? { tpmManufacturerRoots: roots } : {}),
    ...(ca !== undefined
      ? {
          deviceCertificates: {
            ca,
            ...(proxies.length > 0
              ? {
                  trustedProxy: {
                    addresses: proxies,
                    ...(format ? { format: format as 'xfcc' | 'client-cert' | 'pem' } : {}),
                  },
                }
              : {}),
          },
        }
      : {}),
  };
}
