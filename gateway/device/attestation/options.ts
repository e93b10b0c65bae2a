import { join } from 'node:path';
import { openGatewayDatabase, type GatewayDatabase } from '../../store/database';
import { OPEN_ENROLMENT, parseEnrolmentPolicy, type EnrolmentPolicy } from './enrolment-policy';
import { TrustBundle } from './certificate-chain';
import { SqliteEnrolmentStore, type EnrolmentStore } from './enrolments';
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
}

/** Device trust as the running gateway uses it. */
export interface DeviceTrust {
  readonly policy: EnrolmentPolicy;
  readonly enrolments: EnrolmentStore;
  /** Absent when no manufacturer roots are configured. */
  readonly tpm?: TpmAttestationVerifier;
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
      : new TpmAttestationVerifier(TrustBundle.fromPem(options.tpmManufacturerRoots, 'The TPM manufacturer roots'));
  if (policy.requirements.has('tpm') && !tpm) {
    throw new Error('The enrolment policy requires TPM attestation but no TPM manufacturer roots are configured.');
  }
  const trust = { policy, ...(tpm ? { tpm } : {}) };
  if (options?.enrolments) return { ...trust, enrolments: options.enrolments, close: () => {} };
  const own = database ? undefined : openGatewayDatabase(join(stateDir, 'enrolments.db'));
  return { ...trust, enrolments: new SqliteEnrolmentStore(database ?? own!), close: () => own?.close() };
}
