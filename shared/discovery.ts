import { z } from 'zod';
import { PostureCheckId } from './device';
import { AppVersion } from './update';

/**
 * What the device gate covers: the whole app (`app`) or only models that require a compliant device (`models`).
 */
export const DeviceGateScope = z.enum(['app', 'models']);
export type DeviceGateScope = z.infer<typeof DeviceGateScope>;

/**
 * The gateway's discovery document (`GET /.well-known/clearance`).
 *
 * IT deploys only the gateway URL; everything else the client needs comes from here.
 */
export const DiscoveryDocument = z.object({
  issuer: z.string(),
  jwks_uri: z.string(),
  identity_provider: z.object({
    authority: z.string(),
    client_id: z.string(),
    scopes: z.array(z.string()),
    protocol: z.enum(['AAD', 'OIDC']),
  }),
  endpoints: z.object({
    device_challenge: z.string(),
    session: z.string(),
    entitlements: z.string(),
    events: z.string(),
    models: z.string(),
    chat_completions: z.string(),
    /** TPM key attestation: EK certificate and AK in, credential to activate out (docs/protocol.md). */
    device_attestation: z.string().optional(),
  }),
  device_policy: z.object({
    required_checks: z.array(PostureCheckId),
    min_os_versions: z.record(z.string(), z.string()).optional(),
    /** The gateway's enrolment policy: `open`, or `certificate`, `tpm`, `approval` joined by `+`. */
    enrolment: z.string().optional(),
    /**
     * What a non-compliant device is kept from: `app` (or absent) the whole app; `models` only the
     * models whose policy requires a compliant device, so the rest and the person's history stay usable.
     */
    scope: DeviceGateScope.optional(),
  }),
  support_contact: z.string().optional(),
  /** The oldest app version the gateway accepts: an older app explains and offers the update. */
  min_app_version: AppVersion.optional(),
});
export type DiscoveryDocument = z.infer<typeof DiscoveryDocument>;
