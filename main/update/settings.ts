import type { UpdatePolicy } from '../../shared/update';

/** What the updater does on this installation, decided once at start from IT's settings and the shell. */
export type UpdateSettings =
  | { readonly enabled: false; readonly policy: UpdatePolicy; readonly reason: string }
  | {
      readonly enabled: true;
      readonly policy: Exclude<UpdatePolicy, 'off'>;
      /** The generic feed's folder (IT's `updateUrl`). */
      readonly feedUrl: string;
      /** The channel file's name in the feed: `latest` for stable, `beta` for beta. */
      readonly channel: 'latest' | 'beta';
    };

/** What {@link resolveUpdateSettings} reads. */
export interface UpdateSettingsInput {
  readonly shell: 'electron' | 'harness';
  readonly packaged: boolean;
  readonly platform: NodeJS.Platform;
  readonly managed: {
    readonly updatePolicy?: UpdatePolicy;
    readonly updateUrl?: string;
    readonly updateChannel?: 'stable' | 'beta';
  };
  /**
   * Whether the installation names the publisher its updates must be signed by (`publisherName` in
   * the packaged `app-update.yml`). electron-updater skips the Windows signature check without it.
   */
  readonly publisherConfigured: boolean;
}

/**
 * Decides whether and how the in-app updater runs.
 *
 * Off unless IT asks for it: no `updatePolicy` means `off`. Never in the browser harness or a
 * development build, never without a feed, and on Windows never without a publisher to verify.
 */
export function resolveUpdateSettings(input: UpdateSettingsInput): UpdateSettings {
  const policy = input.managed.updatePolicy ?? 'off';
  const off = (reason: string): UpdateSettings => ({ enabled: false, policy, reason });
  if (input.shell === 'harness') return off('The browser harness never updates itself.');
  if (policy === 'off') {
    return off('Your organisation installs Clearance updates itself (managed setting updatePolicy is off).');
  }
  if (!input.packaged) return off('A development build does not update itself.');
  if (!input.managed.updateUrl) {
    return off('Updates are turned on but no update feed is set (managed setting updateUrl). Tell IT.');
  }
  if (input.platform === 'win32' && !input.publisherConfigured) {
    return off(
      'This installation does not name the publisher its updates must be signed by, so it does not update itself. Tell IT.',
    );
  }
  return {
    enabled: true,
    policy,
    feedUrl: input.managed.updateUrl,
    channel: input.managed.updateChannel === 'beta' ? 'beta' : 'latest',
  };
}

/**
 * True when the packaged `app-update.yml` names at least one publisher (`publisherName`).
 */
export function namesPublisher(appUpdateYml: string): boolean {
  return /^publisherName:[ \t]*(?:[^\s#].*|\n(?:[ \t]*\n)*[ \t]*-[ \t]*\S.*)$/m.test(appUpdateYml);
}

/**
 * Compares two versions `major.minor.patch[-pre]`; undefined when either is not one.
 *
 * A pre-release sorts before its release (1.2.0-beta.1 < 1.2.0), as in semver.
 */
export function compareVersions(a: string, b: string): number | undefined {
  const parse = (v: string) => /^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?$/.exec(v.trim());
  const x = parse(a);
  const y = parse(b);
  if (!x || !y) return undefined;
  for (let i = 1; i <= 3; i++) {
    const d = Number(x[i]) - Number(y[i]);
    if (d !== 0) return Math.sign(d);
  }
  const [px, py] = [x[4], y[4]];
  if (px === py) return 0;
  if (px === undefined) return 1;
  if (py === undefined) return -1;
  const partsX = px.split('.');
  const partsY = py.split('.');
  for (let i = 0; i < Math.max(partsX.length, partsY.length); i++) {
    const [p, q] = [partsX[i], partsY[i]];
    if (p === undefined) return -1;
    if (q === undefined) return 1;
    const [np, nq] = [/^\d+$/.test(p) ? Number(p) : undefined, /^\d+$/.test(q) ? Number(q) : undefined];
    if (np !== undefined && nq !== undefined) {
      if (np !== nq) return Math.sign(np - nq);
    } else if (np !== undefined) return -1;
    else if (nq !== undefined) return 1;
    else if (p !== q) return p < q ? -1 : 1;
  }
  return 0;
}
