import type { JSONWebKeySet, JWK } from 'jose';
import { z } from 'zod';
import type { Clock, HttpClient } from '../platform';
import { EntitlementError } from './errors';
import type { EntitlementAlgorithm, EntitlementKeyResolver } from './verify';

/** Where the gateway publishes its public keys, relative to the gateway URL. */
export const JWKS_PATH = '.well-known/jwks.json';

/** The gateway's JWKS URL for a gateway base URL (which may carry a path prefix). */
export function jwksUrlFor(gatewayUrl: string): string {
  const base = gatewayUrl.endsWith('/') ? gatewayUrl : `${gatewayUrl}/`;
  return new URL(JWKS_PATH, base).toString();
}

const JwksResponse = z.object({ keys: z.array(z.looseObject({ kty: z.string(), kid: z.string().optional() })) });

/** Where the key set comes from and where it is kept between runs. */
export interface EntitlementKeySetOptions {
  readonly jwksUrl: string;
  /** A plain client (no credentials): the key set is public. */
  readonly http: HttpClient;
  readonly clock: Clock;
  /** Keys pinned by managed settings: when given, these are the only keys trusted and nothing is fetched. */
  readonly pinnedKeys?: readonly JWK[];
  /** Persists the fetched key set so a cached document can be verified again offline. */
  readonly store?: {
    loadJwks(): Promise<JSONWebKeySet | undefined>;
    saveJwks(jwks: JSONWebKeySet): Promise<void>;
  };
  /** The least time between two fetches triggered by an unknown `kid` (default 30 s). */
  readonly minRefetchIntervalMs?: number;
  readonly fetchTimeoutMs?: number;
  readonly log?: (message: string, error?: unknown) => void;
}

/**
 * The gateway's entitlement signing keys, looked up by `kid`.
 *
 * Keys come from the pinned list, or from the gateway's own JWKS URL (never from a URL inside a
 * token), cached in memory and on disk. An unknown `kid` triggers one refetch (key rotation), at most
 * once per `minRefetchIntervalMs`.
 */
export class EntitlementKeySet {
  private keys: readonly JWK[] = [];
  private loadedFromStore = false;
  private lastFetchAt: number | undefined;
  private fetching: Promise<void> | undefined;

  constructor(private readonly options: EntitlementKeySetOptions) {}

  /** A resolver for {@link verifyEntitlementDocument}; with `network: false` only cached keys are used. */
  resolver(mode: { readonly network: boolean }): EntitlementKeyResolver {
    return (kid, alg) => this.find(kid, alg, mode.network);
  }

  /** Fetches the key set now (coalesced with a fetch already under way). */
  refresh(): Promise<void> {
    if (this.options.pinnedKeys) return Promise.resolve();
    this.fetching ??= this.fetchKeySet().finally(() => {
      this.fetching = undefined;
    });
    return this.fetching;
  }

  private async find(kid: string, alg: EntitlementAlgorithm, network: boolean): Promise<JWK> {
    const pinned = this.options.pinnedKeys;
    if (pinned) {
      const key = pick(pinned, kid, alg);
      if (key) return key;
      throw new EntitlementError(
        'KEY_UNKNOWN',
        `The entitlement document is signed with key "${kid}", which is not one of the keys pinned by your organisation's managed settings.`,
      );
    }
    await this.loadStored();
    let key = pick(this.keys, kid, alg);
    if (key) return key;
    // A fetch under way (the app's own refresh at start, or another lookup's) may bring this key:
    // wait for it rather than refuse the document because the keys have not arrived yet.
    // Stryker disable next-line ConditionalExpression: with no fetch under way, awaiting undefined and looking again answers the same (the `false` form is killed by jwks.fetch.test.ts).
    if (network && this.fetching) {
      await this.fetching;
      key = pick(this.keys, kid, alg);
      if (key) return key;
    }
    const since = this.lastFetchAt === undefined ? Infinity : this.options.clock.now() - this.lastFetchAt;
    if (network && since >= (this.options.minRefetchIntervalMs ?? 30_000)) {
      await this.refresh();
      key = pick(this.keys, kid, alg);
      if (key) return key;
    }
    if (this.keys.length === 0) {
      throw new EntitlementError(
        'KEYS_UNAVAILABLE',
        "The gateway's signing keys are not available yet, so the entitlement document cannot be checked.",
      );
    }
    throw new EntitlementError(
      'KEY_UNKNOWN',
      `The entitlement document is signed with key "${kid}", which the gateway does not publish.`,
    );
  }

  private async loadStored(): Promise<void> {
    if (this.loadedFromStore) return;
    this.loadedFromStore = true;
    const stored = await this.options.store?.loadJwks();
    if (stored && this.keys.length === 0) this.keys = publicKeysOf(stored, this.options.log);
  }

  private async fetchKeySet(): Promise<void> {
    this.lastFetchAt = this.options.clock.now();
    const url = this.options.jwksUrl;
    let body: unknown;
    try {
      const response = await this.options.http(url, {
        headers: { Accept: 'application/jwk-set+json, application/json' },
        redirect: 'error',
        signal: AbortSignal.timeout(this.options.fetchTimeoutMs ?? 10_000),
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      body = await response.json();
    } catch (error) {
      this.options.log?.(`Could not fetch the gateway's signing keys from ${url}`, error);
      return;
    }
    const parsed = JwksResponse.safeParse(body);
    if (!parsed.success) {
      this.options.log?.(`The gateway's key set at ${url} is not a JWKS; keeping the previous keys`);
      return;
    }
    const jwks = parsed.data as JSONWebKeySet;
    this.keys = publicKeysOf(jwks, this.options.log);
    this.loadedFromStore = true;
    await this.options.store?.saveJwks({ keys: [...this.keys] }).catch((error: unknown) => {
      this.options.log?.("Could not keep the gateway's signing keys for offline use", error);
    });
  }
}

/** The keys of a set that carry a `kid` and no private part. */
function publicKeysOf(jwks: JSONWebKeySet, log?: (message: string) => void): readonly JWK[] {
  return jwks.keys.filter((key) => {
    if (key.d !== undefined) {
      log?.(`Ignored gateway key "${key.kid ?? '?'}": it includes a private part`);
      return false;
    }
    return typeof key.kid === 'string' && key.kid.length > 0;
  });
}

/** The key with this `kid`; if a rotation left two with the same `kid`, the one whose type fits `alg`. */
function pick(keys: readonly JWK[], kid: string, alg: EntitlementAlgorithm): JWK | undefined {
  const named = keys.filter((key) => key.kid === kid);
  // Stryker disable next-line ConditionalExpression,EqualityOperator: a shortcut; with one key the search below returns named[0] as well.
  if (named.length <= 1) return named[0];
  const kty = alg === 'ES256' ? 'EC' : 'OKP';
  return named.find((key) => key.kty === kty) ?? named[0];
}
