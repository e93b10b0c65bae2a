import { join } from 'node:path';
import {
  LogLevel,
  PromptValue,
  ProtocolMode,
  PublicClientApplication,
  type AccountInfo,
  type AuthenticationResult,
  type Configuration,
} from '@azure/msal-node';
import type { Account, SessionState } from '../../shared/ipc';
import { Emitter } from '../events';
import type { Adapters } from '../platform';
import { parseClaimsChallenge } from './claims-challenge';
import { validateIdentityConfig, type IdentityConfig } from './config';
import { explainFailure, IdentityError } from './errors';
import { createIdentityNetworkClient } from './network';
import { SIGN_IN_ERROR_PAGE, SIGN_IN_SUCCESS_PAGE } from './templates';
import {
  chooseTokenPersistence,
  EncryptedTokenCachePlugin,
  TOKEN_CACHE_FILE,
  type TokenPersistence,
} from './token-cache';
import { personIdOf } from '../profile/personId';

/** The adapters the identity service needs. */
export type IdentityAdapters = Pick<Adapters, 'secrets' | 'browser' | 'http' | 'paths' | 'clock'>;

/** Tuning for {@link IdentityService}; the defaults suit the app. */
export interface IdentityServiceOptions {
  readonly log?: (message: string) => void;
  /** An interactive sign-in nobody finishes is stopped after this long (10 minutes). */
  readonly signInTimeoutMs?: number;
  /** Renew the access token shortly before it expires without being asked (on by default). */
  readonly renewInBackground?: boolean;
}

/** Renew when less than this is left (or half the token's lifetime, if that is shorter). */
const RENEWAL_WINDOW_MS = 5 * 60 * 1000;
const DEFAULT_SIGN_IN_TIMEOUT_MS = 10 * 60 * 1000;
const RETRY_AFTER_NETWORK_FAILURE_MS = 60 * 1000;
const MAX_TIMER_MS = 2 ** 31 - 1;

interface HeldToken {
  readonly value: string;
  readonly expiresAt: number;
  /** Unknown for a token MSAL answered from its cache. */
  readonly lifetimeMs?: number;
}

interface SignInAttempt {
  readonly promise: Promise<SessionState>;
  readonly resolve: (state: SessionState) => void;
  readonly reject: (error: IdentityError) => void;
  authorizeUrl?: string;
  stopped?: 'cancelled' | 'timeout';
}

/**
 * Signs the person in with the organisation's identity provider and keeps a fresh access token for the gateway.
 *
 * MSAL Node's public client: the system browser (through `ExternalBrowser`) with PKCE and a
 * loopback redirect, never an embedded window (RFC 8252). Tokens live in MSAL's cache, kept
 * encrypted with the OS secret store, or in memory only when that store cannot protect them.
 * The service holds one account: signing in as someone else replaces the previous account once
 * the new sign-in succeeds (a cancelled switch keeps the previous one).
 */
export class IdentityService {
  private readonly changed = new Emitter<SessionState>();
  /** Fires with the new state whenever it changes. */
  readonly onDidChange = this.changed.event;

  private readonly app: PublicClientApplication;
  private readonly network: ReturnType<typeof createIdentityNetworkClient>;
  private readonly cachePlugin: EncryptedTokenCachePlugin | undefined;
  private readonly persistence: TokenPersistence;
  private readonly scopes: string[];
  private readonly log: (message: string) => void;
  private readonly signInTimeoutMs: number;
  private readonly renewInBackground: boolean;

  private current: SessionState;
  private account: AccountInfo | undefined;
  private token: HeldToken | undefined;
  private attempt: SignInAttempt | undefined;
  private renewal: Promise<string> | undefined;
  private renewalTimer: ReturnType<typeof setTimeout> | undefined;
  /** Claims a challenge asked for that only an interactive sign-in can satisfy. */
  private pendingClaims: string | undefined;
  private disposed = false;

  constructor(
    private readonly adapters: IdentityAdapters,
    private readonly config: IdentityConfig,
    options: IdentityServiceOptions = {},
  ) {
    validateIdentityConfig(config);
    this.log = options.log ?? (() => {});
    this.signInTimeoutMs = options.signInTimeoutMs ?? DEFAULT_SIGN_IN_TIMEOUT_MS;
    this.renewInBackground = options.renewInBackground ?? true;
    this.scopes = [...config.scopes];
    this.persistence = chooseTokenPersistence(adapters.secrets, config.allowBasicTextPersistence === true);
    if (this.persistence === 'session-only') {
      this.log(
        `Token cache: the OS secret store cannot protect it (backend ${adapters.secrets.backend()}); ` +
          'tokens stay in memory and sign-in lasts until Clearance quits',
      );
    }
    this.cachePlugin =
      this.persistence === 'encrypted'
        ? new EncryptedTokenCachePlugin(adapters.secrets, join(adapters.paths.userData, TOKEN_CACHE_FILE), this.log)
        : undefined;
    this.network = createIdentityNetworkClient({
      http: adapters.http,
      ...(config.caCertPem ? { caCertPem: config.caCertPem } : {}),
    });
    this.app = new PublicClientApplication(this.msalConfiguration());
    this.current = Object.freeze({ status: 'signed-out', tokenPersistence: this.persistence });
  }

  /** Where sign-in stands, as the UI shows it (never a token). */
  get state(): SessionState {
    return this.current;
  }

  /** Who is signed in (main/profile/personId.ts), to choose their profile; undefined when nobody is. */
  get personId(): string | undefined {
    return this.account && this.current.status === 'signed-in' ? personIdOf(this.account) : undefined;
  }

  /**
   * Picks up the account of an earlier run from the token cache and checks it still works.
   *
   * Signed in when a token can be had silently (or the provider is merely unreachable);
   * signed out, with a message, when the provider wants an interactive sign-in.
   */
  async restore(): Promise<SessionState> {
    if (this.account || this.attempt) return this.current;
    let accounts: AccountInfo[];
    try {
      accounts = await this.app.getAllAccounts();
    } catch (error) {
      this.log(`Token cache could not be read: ${(error as Error).message}`);
      return this.current;
    }
    const account = accounts[0];
    if (!account) return this.current;
    await this.keepOnly(account);
    this.account = account;
    try {
      await this.getAccessToken();
    } catch (error) {
      if (error instanceof IdentityError && error.code === 'IDENTITY_PROVIDER_UNREACHABLE' && this.account) {
        this.setState({ status: 'signed-in', account: toAccount(account) });
      }
    }
    return this.current;
  }

  /**
   * Signs in interactively in the system browser; while signed in, this switches account.
   *
   * Resolves when the provider has answered and tokens are cached. Rejects with an
   * {@link IdentityError}: `SIGN_IN_CANCELLED` after {@link cancelSignIn}, `SIGN_IN_FAILED`
   * (or `IDENTITY_PROVIDER_UNREACHABLE`) with a plain-words message that also lands in
   * `state.lastError`. A second call while one is running joins it.
   */
  signIn(): Promise<SessionState> {
    if (this.disposed) return Promise.reject(new IdentityError('SIGN_IN_FAILED', 'Clearance is shutting down.'));
    if (this.attempt) return this.attempt.promise;
    let resolve!: (state: SessionState) => void;
    let reject!: (error: IdentityError) => void;
    const promise = new Promise<SessionState>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const attempt: SignInAttempt = { promise, resolve, reject };
    this.attempt = attempt;
    this.setState({ status: 'signing-in', ...(this.account ? { account: toAccount(this.account) } : {}) });

    const timer = setTimeout(() => this.stopAttempt(attempt, 'timeout'), this.signInTimeoutMs);
    timer.unref?.();
    this.app
      .acquireTokenInteractive({
        scopes: this.scopes,
        prompt: this.config.protocol === 'AAD' ? PromptValue.SELECT_ACCOUNT : PromptValue.LOGIN,
        ...(this.pendingClaims ? { claims: this.pendingClaims } : {}),
        successTemplate: SIGN_IN_SUCCESS_PAGE,
        errorTemplate: SIGN_IN_ERROR_PAGE,
        openBrowser: (url) => this.openBrowser(attempt, url),
      })
      .then(
        (result) => this.finishSignIn(attempt, result),
        (error: unknown) => this.failSignIn(attempt, error),
      )
      .finally(() => clearTimeout(timer));
    return promise;
  }

  /**
   * Stops a running interactive sign-in: its loopback listener closes and the app goes back to where it was.
   *
   * The pending {@link signIn} rejects with `SIGN_IN_CANCELLED`; nothing happens when none is running.
   */
  cancelSignIn(): SessionState {
    if (this.attempt) this.stopAttempt(this.attempt, 'cancelled');
    return this.current;
  }

  /**
   * Signs out: forgets the account and deletes every cached token, in memory and on disk.
   *
   * Only this app's tokens go; the browser's session at the provider stays (the next sign-in
   * asks who to sign in as anyway).
   */
  async signOut(): Promise<SessionState> {
    if (this.attempt) this.stopAttempt(this.attempt, 'cancelled');
    this.clearRenewalTimer();
    await this.renewal?.catch(() => {});
    this.account = undefined;
    this.token = undefined;
    this.pendingClaims = undefined;
    try {
      for (const account of await this.app.getAllAccounts()) await this.app.signOut({ account });
    } catch (error) {
      this.log(`Sign-out could not remove an account from the token cache: ${(error as Error).message}`);
    }
    this.app.clearCache();
    await this.cachePlugin?.clear();
    this.setState({ status: 'signed-out' });
    return this.current;
  }

  /**
   * An access token for the gateway, renewed silently when less than five minutes are left.
   *
   * Throws an {@link IdentityError}: `NOT_SIGNED_IN` when only an interactive sign-in can help
   * (the state turns signed-out with the reason), `IDENTITY_PROVIDER_UNREACHABLE` when the
   * provider cannot be reached (the person stays signed in).
   */
  async getAccessToken(): Promise<string> {
    if (!this.account) {
      throw new IdentityError('NOT_SIGNED_IN', this.current.lastError ?? 'Sign in to continue.');
    }
    if (this.token && !this.needsRenewal(this.token)) return this.token.value;
    this.renewal ??= this.renew(this.account).finally(() => {
      this.renewal = undefined;
    });
    return this.renewal;
  }

  /**
   * Answers a resource's claims challenge (`401` with `WWW-Authenticate: … error="insufficient_claims", claims="<base64>"`).
   *
   * Asks the provider for a token that satisfies the claims, silently where it can. When the
   * provider needs the person (for example, multi-factor authentication), the state turns
   * signed-out with a message, the claims are kept for the next {@link signIn}, and this throws
   * `NOT_SIGNED_IN`.
   */
  async handleClaimsChallenge(wwwAuthenticate: string): Promise<string> {
    const challenge = parseClaimsChallenge(wwwAuthenticate);
    if (!challenge) {
      throw new IdentityError(
        'SIGN_IN_FAILED',
        'The gateway asked for a different sign-in in a form Clearance does not understand. Contact IT.',
        'invalid_claims_challenge',
      );
    }
    const account = this.account;
    if (!account) throw new IdentityError('NOT_SIGNED_IN', 'Sign in to continue.');
    await this.renewal?.catch(() => {});
    try {
      const result = await this.app.acquireTokenSilent({
        account,
        scopes: this.scopes,
        claims: challenge.claims,
        forceRefresh: true,
      });
      if (this.account?.homeAccountId !== account.homeAccountId) {
        throw new IdentityError('NOT_SIGNED_IN', 'You signed out. Sign in to continue.');
      }
      this.hold(result);
      return result.accessToken;
    } catch (error) {
      const { error: explained, effect } = explainFailure(error, 'renewal');
      if (effect === 'sign-out' && this.account?.homeAccountId === account.homeAccountId) {
        this.pendingClaims = challenge.claims;
        const message = 'Your organisation needs you to sign in again to continue (an access policy asked for it).';
        await this.dropAccount(message);
        throw new IdentityError('NOT_SIGNED_IN', message, explained.providerCode);
      }
      throw explained;
    }
  }

  /** Stops timers, any sign-in in progress, and the event. */
  async dispose(): Promise<void> {
    if (this.attempt) this.stopAttempt(this.attempt, 'cancelled');
    this.disposed = true;
    this.clearRenewalTimer();
    await this.renewal?.catch(() => {});
    this.network.dispose();
    this.changed.dispose();
  }

  private msalConfiguration(): Configuration {
    const { authority, clientId, protocol } = this.config;
    return {
      auth: {
        clientId,
        authority,
        // Without the host here MSAL would ask Microsoft's instance discovery about a non-Entra authority.
        ...(protocol === 'OIDC' ? { knownAuthorities: [new URL(authority).host] } : {}),
        // CP1: this client handles claims challenges, so Entra may issue long-lived, revocable (CAE) tokens.
        ...(protocol === 'AAD' ? { clientCapabilities: ['CP1'] } : {}),
      },
      ...(this.cachePlugin ? { cache: { cachePlugin: this.cachePlugin } } : {}),
      system: {
        protocolMode: protocol === 'OIDC' ? ProtocolMode.OIDC : ProtocolMode.AAD,
        networkClient: this.network,
        loggerOptions: {
          piiLoggingEnabled: false,
          logLevel: LogLevel.Warning,
          loggerCallback: (_level, message, containsPii) => {
            // Only Entra sends client_info; elsewhere MSAL warns about its absence on every token.
            if (containsPii || (protocol === 'OIDC' && message.includes('No client info in response'))) return;
            this.log(`msal: ${message}`);
          },
        },
      },
    };
  }

  private async openBrowser(attempt: SignInAttempt, url: string): Promise<void> {
    if (attempt.stopped) throw new IdentityError('SIGN_IN_CANCELLED', 'Sign-in was cancelled.');
    attempt.authorizeUrl = url;
    try {
      await this.adapters.browser.open(url);
    } catch (error) {
      throw new IdentityError(
        'SIGN_IN_FAILED',
        `Clearance could not open your web browser to sign in (${(error as Error).message}).`,
        'browser_unavailable',
      );
    }
  }

  private stopAttempt(attempt: SignInAttempt, why: 'cancelled' | 'timeout'): void {
    if (this.attempt !== attempt || attempt.stopped) return;
    attempt.stopped = why;
    this.attempt = undefined;
    if (attempt.authorizeUrl) void releaseLoopbackListener(attempt.authorizeUrl);
    const message =
      why === 'timeout' ? 'The sign-in took too long and was stopped. Choose Sign in to try again.' : undefined;
    this.setState(
      this.account
        ? { status: 'signed-in', account: toAccount(this.account) }
        : { status: 'signed-out', ...(message ? { lastError: message } : {}) },
    );
    attempt.reject(
      why === 'timeout'
        ? new IdentityError('SIGN_IN_FAILED', message ?? '', 'timeout')
        : new IdentityError('SIGN_IN_CANCELLED', 'Sign-in was cancelled.'),
    );
  }

  private async finishSignIn(attempt: SignInAttempt, result: AuthenticationResult): Promise<void> {
    if (attempt.stopped) {
      // The provider answered after the person gave up: forget that account unless it is the current one.
      if (result.account && result.account.homeAccountId !== this.account?.homeAccountId) {
        await this.app.signOut({ account: result.account }).catch(() => {});
      }
      return;
    }
    try {
      if (!result.account) throw new IdentityError('SIGN_IN_FAILED', 'The sign-in service did not say who signed in.');
      await this.keepOnly(result.account);
      this.account = result.account;
      this.pendingClaims = undefined;
      this.hold(result);
      this.attempt = undefined;
      this.setState({ status: 'signed-in', account: toAccount(result.account) });
      this.log(`Signed in as ${result.account.username}`);
      attempt.resolve(this.current);
    } catch (error) {
      this.failSignIn(attempt, error);
    }
  }

  private failSignIn(attempt: SignInAttempt, error: unknown): void {
    if (attempt.stopped) return;
    this.attempt = undefined;
    const { error: explained } = explainFailure(error, 'sign-in');
    const failure =
      explained.code === 'NOT_SIGNED_IN'
        ? new IdentityError('SIGN_IN_FAILED', explained.message, explained.providerCode)
        : explained;
    this.log(`Sign-in failed (${failure.providerCode ?? failure.code}): ${failure.message}`);
    this.setState(
      this.account
        ? { status: 'signed-in', account: toAccount(this.account), lastError: failure.message }
        : { status: 'signed-out', lastError: failure.message },
    );
    attempt.reject(failure);
  }

  private async renew(account: AccountInfo): Promise<string> {
    try {
      let result = await this.app.acquireTokenSilent({ account, scopes: this.scopes });
      if (this.needsRenewal(heldTokenOf(result, this.adapters.clock.now()))) {
        result = await this.app.acquireTokenSilent({ account, scopes: this.scopes, forceRefresh: true });
      }
      if (this.account?.homeAccountId !== account.homeAccountId) {
        throw new IdentityError('NOT_SIGNED_IN', 'You signed out. Sign in to continue.');
      }
      this.hold(result);
      if (this.current.status !== 'signed-in' || this.current.lastError) {
        this.setState({ status: 'signed-in', account: toAccount(account) });
      }
      return result.accessToken;
    } catch (error) {
      const { error: explained, effect } = explainFailure(error, 'renewal');
      if (effect === 'sign-out' && this.account?.homeAccountId === account.homeAccountId) {
        this.log(`Silent renewal needs a new sign-in (${explained.providerCode ?? explained.code})`);
        await this.dropAccount(explained.message);
      } else if (effect === 'none') {
        this.log(`Silent renewal failed (${explained.providerCode ?? explained.code}): ${explained.message}`);
      }
      throw explained;
    }
  }

  /** Forgets the account after the provider ended its session, and says why. */
  private async dropAccount(message: string): Promise<void> {
    const account = this.account;
    this.account = undefined;
    this.token = undefined;
    this.clearRenewalTimer();
    if (account) await this.app.signOut({ account }).catch(() => {});
    this.setState({ status: 'signed-out', lastError: message });
  }

  private async keepOnly(account: AccountInfo): Promise<void> {
    for (const other of await this.app.getAllAccounts()) {
      if (other.homeAccountId !== account.homeAccountId) await this.app.signOut({ account: other });
    }
  }

  private hold(result: AuthenticationResult): void {
    this.token = heldTokenOf(result, this.adapters.clock.now());
    this.scheduleRenewal();
  }

  private needsRenewal(token: HeldToken): boolean {
    const window = Math.min(
      RENEWAL_WINDOW_MS,
      token.lifetimeMs !== undefined ? token.lifetimeMs / 2 : RENEWAL_WINDOW_MS,
    );
    return token.expiresAt - this.adapters.clock.now() <= window;
  }

  private scheduleRenewal(delayMs?: number): void {
    this.clearRenewalTimer();
    const token = this.token;
    if (!this.renewInBackground || !token || this.disposed) return;
    const window = Math.min(
      RENEWAL_WINDOW_MS,
      token.lifetimeMs !== undefined ? token.lifetimeMs / 2 : RENEWAL_WINDOW_MS,
    );
    const delay = delayMs ?? Math.max(1000, token.expiresAt - window - this.adapters.clock.now());
    this.renewalTimer = setTimeout(
      () => {
        this.renewalTimer = undefined;
        // A timer may fire a little before the clock says renewal is due (timers run on a monotonic
        // clock, the token's expiry on the wall clock, which can also be set back): try again then,
        // rather than let background renewal stop for good.
        if (this.token && !this.needsRenewal(this.token)) {
          this.scheduleRenewal();
          return;
        }
        this.getAccessToken().catch((error: unknown) => {
          if (error instanceof IdentityError && error.code === 'IDENTITY_PROVIDER_UNREACHABLE' && this.account) {
            this.scheduleRenewal(RETRY_AFTER_NETWORK_FAILURE_MS);
          }
        });
      },
      Math.min(delay, MAX_TIMER_MS),
    );
    this.renewalTimer.unref?.();
  }

  private clearRenewalTimer(): void {
    if (this.renewalTimer) clearTimeout(this.renewalTimer);
    this.renewalTimer = undefined;
  }

  private setState(next: Omit<SessionState, 'tokenPersistence'>): void {
    this.current = Object.freeze({ ...next, tokenPersistence: this.persistence });
    this.changed.fire(this.current);
  }
}

function heldTokenOf(result: AuthenticationResult, now: number): HeldToken {
  const expiresAt = result.expiresOn?.getTime() ?? now;
  return {
    value: result.accessToken,
    expiresAt,
    ...(result.fromCache ? {} : { lifetimeMs: Math.max(0, expiresAt - now) }),
  };
}

function toAccount(account: AccountInfo): Account {
  return {
    name: account.name || account.username,
    username: account.username,
    ...(account.tenantId ? { tenantId: account.tenantId } : {}),
    homeAccountId: account.homeAccountId,
  };
}

/**
 * Ends MSAL's wait for the browser by posting an `access_denied` answer (with the request's own `state`) to its loopback listener.
 *
 * MSAL then closes the listener itself; without this it would wait until the browser answered.
 */
async function releaseLoopbackListener(authorizeUrl: string): Promise<void> {
  const request = new URL(authorizeUrl);
  const redirectUri = request.searchParams.get('redirect_uri');
  const state = request.searchParams.get('state');
  if (!redirectUri || !state) return;
  const target = new URL(redirectUri);
  if (target.protocol !== 'http:' || !['localhost', '127.0.0.1'].includes(target.hostname)) return;
  target.hostname = '127.0.0.1';
  await fetch(target, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ error: 'access_denied', error_description: 'Cancelled in Clearance', state }),
    signal: AbortSignal.timeout(5000),
  }).catch(() => {});
}
