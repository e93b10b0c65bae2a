import { lstat } from 'node:fs/promises';

/** Who must own policy files and folders: root, or the harness's own user in tests. */
export interface OwnershipRule {
  /** The owner a policy file must have: 0 (root) on a real device. */
  readonly trustedUid: number;
}

/** The root owner rule real devices use. */
export const ROOT_OWNED: OwnershipRule = { trustedUid: 0 };

/**
 * Why a policy file or folder cannot be trusted, or undefined when it can.
 *
 * Trusted: a regular file or folder (not a symbolic link) owned by the trusted owner, not writable by
 * others, and writable by its group only when that group is root's.
 */
export async function untrustedReason(path: string, rule: OwnershipRule): Promise<string | undefined> {
  const info = await lstat(path);
  if (info.isSymbolicLink()) return `${path} is a symbolic link; policy files must be regular files`;
  if (!info.isFile() && !info.isDirectory()) return `${path} is not a regular file`;
  if (info.uid !== rule.trustedUid) {
    return `${path} is owned by user ${info.uid}, not root; Clearance only trusts policy that only root can change`;
  }
  if ((info.mode & 0o002) !== 0) return `${path} is writable by every user; make it writable by root only`;
  if ((info.mode & 0o020) !== 0 && info.gid !== rule.trustedUid) {
    return `${path} is writable by group ${info.gid}; make it writable by root only`;
  }
  return undefined;
}
