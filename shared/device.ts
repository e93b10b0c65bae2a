import { z } from 'zod';

/** Identifiers of the posture checks every platform reports. */
export const PostureCheckId = z.enum([
  'os-version',
  'disk-encryption',
  'screen-lock',
  'firewall',
  'managed',
  'app-integrity',
]);
export type PostureCheckId = z.infer<typeof PostureCheckId>;

/**
 * One posture check's outcome.
 *
 * `unknown` means the check could not tell; it is never counted as a pass.
 */
export const PostureCheck = z.object({
  id: PostureCheckId,
  status: z.enum(['pass', 'fail', 'unknown']),
  detail: z.string(),
  remediation: z.string(),
});
export type PostureCheck = z.infer<typeof PostureCheck>;

/** How the device key is protected. */
export const DeviceAssurance = z.enum(['software', 'hardware']);
export type DeviceAssurance = z.infer<typeof DeviceAssurance>;

/**
 * Claims of the posture report JWS (`typ: posture+jwt`) signed by the device key.
 */
export const PostureReportClaims = z.object({
  nonce: z.string().min(16),
  iat: z.number().int(),
  deviceId: z.string().min(1),
  assurance: DeviceAssurance,
  platform: z.enum(['linux', 'darwin', 'win32']),
  appVersion: z.string(),
  checks: z.array(PostureCheck),
});
export type PostureReportClaims = z.infer<typeof PostureReportClaims>;

/**
 * The gateway's view of a device after attestation.
 */
export const DeviceVerdict = z.object({
  id: z.string(),
  assurance: DeviceAssurance,
  compliant: z.boolean(),
  failedChecks: z.array(PostureCheckId),
  checks: z.array(PostureCheck),
});
export type DeviceVerdict = z.infer<typeof DeviceVerdict>;
