import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../platform';
import { profileFolderName } from './personId';

/** Folders under the app's data folder that held everyone's data before profiles were per person. */
const LEGACY_FOLDERS = ['conversations', 'entitlements'] as const;
const PROFILES_DIR = 'profiles';
const SET_ASIDE_DIR = 'set-aside';
const NOTICE_FILE = 'legacy-notice.pending';

/** What the person who signs in is told, once, when data from before per-person profiles was set aside. */
export const LEGACY_SET_ASIDE_NOTICE =
  'Conversations saved before Clearance kept each person’s data separately were set aside, so that ' +
  'nobody sees another person’s history. Your IT team can recover them if they are yours.';

/** Options for {@link PersonProfiles}. */
export interface PersonProfilesOptions {
  /** The app's per-user data folder (Electron `userData`). */
  readonly userData: string;
  readonly clock: Clock;
  readonly log: (message: string, error?: unknown) => void;
}

/**
 * Where each person's data lives on a shared device: `<userData>/profiles/<digest of their id>/`.
 *
 * Each profile folder holds that person's conversations and entitlement cache, each encrypted with a
 * data key bound to the person (main/conversations/sealedFile.ts). The device key, the discovery
 * cache and the token cache stay at the top: they belong to the device, or hold one account at a time.
 */
export class PersonProfiles {
  constructor(private readonly options: PersonProfilesOptions) {}

  /** The folder of a person's profile (not created here). */
  folderOf(personId: string): string {
    return join(this.options.userData, PROFILES_DIR, profileFolderName(personId));
  }

  /**
   * Moves data written before profiles were per person out of every profile's reach, into `set-aside/`.
   *
   * Nobody signed in can tell whose it was, so it is shown to nobody; IT can recover it with the old
   * key. Answers true when something was moved; the next {@link takeNotices} then says so once.
   */
  async setAsideLegacyData(): Promise<boolean> {
    const present: string[] = [];
    for (const name of LEGACY_FOLDERS) {
      if (await exists(join(this.options.userData, name))) present.push(name);
    }
    if (present.length === 0) return false;
    const stamp = new Date(this.options.clock.now()).toISOString().replace(/[:.]/g, '-');
    const target = join(this.options.userData, SET_ASIDE_DIR, `before-profiles-${stamp}`);
    await mkdir(target, { recursive: true, mode: 0o700 });
    for (const name of present) await rename(join(this.options.userData, name), join(target, name));
    await mkdir(join(this.options.userData, PROFILES_DIR), { recursive: true, mode: 0o700 });
    await writeFile(join(this.options.userData, PROFILES_DIR, NOTICE_FILE), target, { mode: 0o600 });
    this.options.log(`Set aside data from before per-person profiles (${present.join(', ')}) in ${target}`);
    return true;
  }

  /** Messages the app owes whoever signs in next, each given only once. */
  async takeNotices(): Promise<string[]> {
    const marker = join(this.options.userData, PROFILES_DIR, NOTICE_FILE);
    try {
      await readFile(marker);
    } catch {
      return [];
    }
    await rm(marker, { force: true });
    return [LEGACY_SET_ASIDE_NOTICE];
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
