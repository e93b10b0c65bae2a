import { z } from 'zod';

/**
 * A release version as the gateway names it (`min_app_version` in discovery): semantic version, no build part.
 */
export const AppVersion = z
  .string()
  .max(64)
  .regex(/^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/, 'a version such as 1.4.0');
export type AppVersion = z.infer<typeof AppVersion>;

/** IT's update policy (managed setting `updatePolicy`). */
export const UpdatePolicy = z.enum(['off', 'notify', 'auto']);
export type UpdatePolicy = z.infer<typeof UpdatePolicy>;

/**
 * Where the in-app updater stands, as the page shows it and the diagnostics bundle records it.
 *
 * `disabled` carries the reason in `message` (IT deploys updates, no feed configured, the browser
 * harness, a development build). `available` waits for the person in `notify`; in `auto` the
 * download starts by itself and `ready` installs when the app quits.
 */
export const UpdateStatus = z.object({
  policy: UpdatePolicy,
  state: z.enum(['disabled', 'idle', 'checking', 'up-to-date', 'available', 'downloading', 'ready', 'error']),
  currentVersion: z.string(),
  /** The feed's channel file (`latest`, `beta`) and folder. */
  channel: z.string().optional(),
  feedUrl: z.string().optional(),
  availableVersion: z.string().optional(),
  /** Download progress, 0 to 100. */
  percent: z.number().min(0).max(100).optional(),
  checkedAt: z.string().optional(),
  /** Plain words: why updates are off, or why the last check or download failed. */
  message: z.string().max(2000).optional(),
  /** The gateway requires at least this version (discovery) and this app is older. */
  requiredVersion: z.string().optional(),
  /** Whether the person can start the update from the app (a feed is configured and the policy allows it). */
  canUpdate: z.boolean(),
});
export type UpdateStatus = z.infer<typeof UpdateStatus>;
