import { z } from 'zod';

/** Settings a person can change in the app, and which IT can therefore lock. */
export const LockableSetting = z.enum(['theme', 'spellCheck']);
export type LockableSetting = z.infer<typeof LockableSetting>;

/** The policy store a managed value came from: the Windows registry, a macOS configuration profile, a Linux file. */
export const PolicySourceKind = z.enum(['registry', 'profile', 'file']);
export type PolicySourceKind = z.infer<typeof PolicySourceKind>;

/** Whether a value was set for the whole machine or for the signed-in OS user (the machine wins). */
export const PolicyLevel = z.enum(['machine', 'user']);
export type PolicyLevel = z.infer<typeof PolicyLevel>;

/**
 * What became of one managed value.
 *
 * `applied`: in force. `rejected`: not used, `reason` says why (a wrong value stops the app).
 * `overridden`: a user value the machine's value replaced. `unknown`: a key this version does not know.
 */
export const PolicyEntryStatus = z.enum(['applied', 'rejected', 'overridden', 'unknown']);
export type PolicyEntryStatus = z.infer<typeof PolicyEntryStatus>;

/** One managed key as found in one store, for the Policies page (like `chrome://policy`). */
export const PolicyEntry = z.object({
  key: z.string(),
  /** The value as text (JSON for lists and objects). */
  value: z.string(),
  source: PolicySourceKind,
  level: PolicyLevel,
  /** The registry key, profile or file it was read from. */
  location: z.string(),
  status: PolicyEntryStatus,
  reason: z.string().optional(),
});
export type PolicyEntry = z.infer<typeof PolicyEntry>;

/** A problem with managed configuration that stops the app: the key (when one is to blame) and what is wrong. */
export const PolicyProblem = z.object({
  key: z.string().optional(),
  location: z.string(),
  message: z.string(),
});
export type PolicyProblem = z.infer<typeof PolicyProblem>;

/**
 * The device's managed configuration as the renderer sees it.
 *
 * `invalid` means configuration is present but cannot be used: the app stops at a screen naming each problem.
 */
export const ManagedPolicyView = z.object({
  state: z.enum(['unmanaged', 'managed', 'invalid']),
  entries: z.array(PolicyEntry),
  problems: z.array(PolicyProblem),
  /** Settings the person cannot change in the app. */
  locked: z.array(LockableSetting),
  /** IT's values for the settings a person sees (defaults, or enforced when locked). */
  settings: z.object({
    theme: z.enum(['system', 'light', 'dark']).optional(),
    spellCheck: z.boolean().optional(),
  }),
  /** Who to contact: IT's override, when valid. */
  supportContact: z.string().optional(),
});
export type ManagedPolicyView = z.infer<typeof ManagedPolicyView>;

/** The notice a locked setting shows. */
export const MANAGED_NOTICE = 'Managed by your organisation';
