import { join } from 'node:path';
import { openGatewayDatabase, type GatewayDatabase } from '../../store/database';
import { OPEN_ENROLMENT, parseEnrolmentPolicy, type EnrolmentPolicy } from './enrolment-policy';
import { SqliteEnrolmentStore, type EnrolmentStore } from './enrolments';

/** How the gateway decides which devices it trusts (GatewayOptions.deviceTrust). */
export interface DeviceTrustOptions {
  /** `open` (the default), or `certificate`, `tpm`, `approval` combined with `+`. */
  readonly enrolmentPolicy?: string | readonly string[];
  /** Where enrolment requests and approvals are kept; default SQLite in the gateway's database. */
  readonly enrolments?: EnrolmentStore;
}

/** Device trust as the running gateway uses it. */
export interface DeviceTrust {
  readonly policy: EnrolmentPolicy;
  readonly enrolments: EnrolmentStore;
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
  if (options?.enrolments) return { policy, enrolments: options.enrolments, close: () => {} };
  const own = database ? undefined : openGatewayDatabase(join(stateDir, 'enrolments.db'));
  return { policy, enrolments: new SqliteEnrolmentStore(database ?? own!), close: () => own?.close() };
}
