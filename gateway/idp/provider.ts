import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import Provider, {
  errors,
  type Grant,
  type InteractionDetails,
  type ProviderContext,
  type ProviderToken,
} from 'oidc-provider';
import { loadOrCreateTlsMaterial } from './certificates';
import { loadOrCreateCookieKeys, loadOrCreateSigningKeys } from './keys';
import { renderLoginPage, renderMessagePage, type ProviderPage } from './pages';
import { demoPersonas, findPersona, type Persona } from './personas';
import { readStateFile, writeStateFile } from './state-files';
import { ProviderStore } from './store';

/** Options for {@link startIdentityProvider}. */
export interface IdentityProviderOptions {
  /** Folder for the CA, certificate, signing keys and sessions; created if missing, reused on the next start. */
  stateDir: string;
  /**
   * TCP port on loopback. Omitted: the port of the previous start in `stateDir` if it is free (so the
   * issuer, and the app's cached sign-in, stay the same across restarts), else any free port.
   */
  port?: number;
  /** The resource the access tokens are for (`aud`), e.g. `api://clearance-gateway`. */
  gatewayAudience: string;
  log?: (line: string) => void;
  /** The people the login page offers; {@link demoPersonas} by default. */
  personas?: readonly Persona[];
  /** Access token lifetime; 15 minutes by default. Tests shorten it to exercise renewal. */
  accessTokenTtlSeconds?: number;
  /** The native client's id; `clearance-desktop` by default. */
  clientId?: string;
  /**
   * Authentication contexts (`acrs`) a claims challenge may ask for that a refresh grants silently
   * (`c1` by default). Any other context needs the person: a refresh token request for it fails with
   * `interaction_required`, and an interactive sign-in grants it, like an Entra step-up policy.
   */
  silentAuthenticationContexts?: readonly string[];
}

/** A running development identity provider. */
export interface RunningIdentityProvider {
  /** `https://localhost:PORT`: also the authority the app configures. */
  readonly issuer: string;
  readonly jwksUri: string;
  /** The CA that signed the provider's TLS certificate; clients add it to their trust for this host only. */
  readonly caCertPem: string;
  readonly clientId: string;
  /** The scopes the app asks for; MSAL adds `openid profile offline_access` itself. */
  readonly scopes: string[];
  /** The people the login page lists. */
  readonly personas: readonly Persona[];
  close(): Promise<void>;
}

const DEFAULT_CLIENT_ID = 'clearance-desktop';
const DEFAULT_ACCESS_TOKEN_TTL_SECONDS = 15 * 60;
const PORT_FILE = 'port.json';
const MAX_FORM_BYTES = 16 * 1024;
const DAY_SECONDS = 24 * 60 * 60;

/**
 * Starts the development identity provider: OpenID Connect on `https://localhost:PORT` (`oidc-provider@9`).
 *
 * One native public client (`clearance-desktop`): authorization code with PKCE (S256 only),
 * redirect URIs `http://127.0.0.1/` and `http://localhost/` on any port (RFC 8252 §7.3), refresh
 * tokens, and JWT access tokens (`typ: at+jwt`) for `gatewayAudience` even when the client sends no
 * `resource` (MSAL does not). Access and ID tokens carry `name`, `preferred_username` and `groups`.
 * Consent is granted automatically for that client. The login page lists the demo personas.
 */
export async function startIdentityProvider(o: IdentityProviderOptions): Promise<RunningIdentityProvider> {
  const log = o.log ?? (() => {});
  const personas = o.personas ?? demoPersonas;
  const clientId = o.clientId ?? DEFAULT_CLIENT_ID;
  const audience = o.gatewayAudience;
  if (!/^[\x21-\x7e]+$/.test(audience))
    throw new Error(`gatewayAudience "${audience}" is not a valid resource identifier`);
  const gatewayScope = `${audience.replace(/\/+$/, '')}/access_as_user`;
  const silentContexts = new Set(o.silentAuthenticationContexts ?? ['c1']);
  const accessTokenTtl = o.accessTokenTtlSeconds ?? DEFAULT_ACCESS_TOKEN_TTL_SECONDS;
  if (!Number.isInteger(accessTokenTtl) || accessTokenTtl < 1)
    throw new Error('accessTokenTtlSeconds must be a positive whole number');

  const [tls, signingKeys, cookieKeys, store] = await Promise.all([
    loadOrCreateTlsMaterial(o.stateDir),
    loadOrCreateSigningKeys(o.stateDir),
    loadOrCreateCookieKeys(o.stateDir),
    ProviderStore.open(o.stateDir, { log }),
  ]);

  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
    res.writeHead(503).end();
  };
  const server = createServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => handler(req, res));
  const port = await listenOnLoopback(server, o.stateDir, o.port);
  const issuer = `https://localhost:${port}`;
  const ipv6 = await alsoListenOnIpv6(port, (req, res) => handler(req, res), tls, log);

  const personaClaims = (persona: Persona) => ({
    name: persona.name,
    preferred_username: persona.username,
    groups: [...persona.groups],
  });

  const provider = new Provider(issuer, {
    adapter: store.adapterFactory(),
    clients: [
      {
        client_id: clientId,
        client_name: 'Clearance',
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        // With application_type native, oidc-provider accepts these on any port (RFC 8252 §7.3).
        redirect_uris: ['http://127.0.0.1/', 'http://localhost/', 'http://127.0.0.1', 'http://localhost'],
        id_token_signed_response_alg: 'ES256',
      },
    ],
    jwks: { keys: signingKeys },
    cookies: { keys: cookieKeys },
    pkce: { required: () => true },
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username', 'groups'],
      email: ['email'],
    },
    // Put the profile claims in the ID token too (MSAL builds the account from it).
    conformIdTokenClaims: false,
    findAccount: async (_ctx: ProviderContext, sub: string) => {
      const persona = findPersona(personas, sub);
      if (!persona) return undefined;
      return {
        accountId: persona.id,
        claims: async () => ({ sub: persona.id, email: persona.username, ...personaClaims(persona) }),
      };
    },
    extraTokenClaims: async (ctx: ProviderContext, token: ProviderToken) => {
      if (token.kind !== 'AccessToken' || !token.accountId) return undefined;
      const persona = findPersona(personas, token.accountId);
      if (!persona) return undefined;
      const acrs = requestedAuthenticationContexts(ctx.oidc.body?.claims);
      const needPerson = acrs.filter((acr) => !silentContexts.has(acr));
      if (needPerson.length > 0 && ctx.oidc.params?.grant_type === 'refresh_token') {
        throw new errors.InteractionRequired(`authentication context ${needPerson.join(', ')} needs a new sign-in`);
      }
      return { ...personaClaims(persona), ...(acrs.length ? { acrs } : {}) };
    },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: { enabled: false },
      claimsParameter: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // MSAL sends no `resource`: every token of this provider is for the gateway.
        defaultResource: async () => audience,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx: ProviderContext, resource: string) => {
          if (resource !== audience) throw new errors.InvalidTarget(`unknown resource ${resource}`);
          return {
            scope: gatewayScope,
            audience,
            accessTokenTTL: accessTokenTtl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
    loadExistingGrant: async (ctx: ProviderContext): Promise<Grant | undefined> => {
      const { client, session, result } = ctx.oidc;
      if (!client || !session?.accountId) return undefined;
      const grantId = result?.consent?.grantId ?? session.grantIdFor(client.clientId);
      if (grantId) {
        const existing = await ctx.oidc.provider.Grant.find(grantId);
        if (existing && existing.accountId === session.accountId) return existing;
      }
      if (client.clientId !== clientId) return undefined;
      // The app is first-party: consent is granted without asking.
      const grant = new ctx.oidc.provider.Grant({ clientId, accountId: session.accountId });
      grant.addOIDCScope('openid profile email offline_access');
      grant.addResourceScope(audience, gatewayScope);
      await grant.save();
      return grant;
    },
    // A refresh token for the app even when it asked `prompt=login` (which drops `offline_access`).
    issueRefreshToken: async (_ctx: ProviderContext, client: { grantTypeAllowed(type: string): boolean }) =>
      client.grantTypeAllowed('refresh_token'),
    // The app's tokens outlive the browser's sign-in session.
    expiresWithSession: async () => false,
    ttl: {
      AccessToken: () => accessTokenTtl,
      AuthorizationCode: () => 60,
      IdToken: () => 60 * 60,
      RefreshToken: () => 14 * DAY_SECONDS,
      Grant: () => 14 * DAY_SECONDS,
      Session: () => 14 * DAY_SECONDS,
      Interaction: () => 10 * 60,
    },
    interactions: { url: (_ctx: ProviderContext, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    clientBasedCORS: () => false,
    renderError: async (ctx: ProviderContext, out: Record<string, string>) => {
      const page = renderMessagePage(
        ctx.status >= 400 ? ctx.status : 400,
        'Sign-in could not continue',
        'Return to Clearance and choose Sign in again.',
        out.error_description ? `${out.error}: ${out.error_description}` : out.error,
      );
      for (const [name, value] of Object.entries(page.headers)) ctx.set(name, value);
      ctx.type = 'html';
      ctx.body = page.html;
    },
  });

  provider.on('grant.success', (ctx: unknown) => {
    const params = (ctx as ProviderContext).oidc.params;
    log(`idp: issued tokens (${String(params?.grant_type)})`);
  });
  provider.on('server_error', (_ctx: unknown, error: unknown) => log(`idp: server error: ${describe(error)}`));
  for (const event of ['authorization.error', 'grant.error', 'backchannel.error']) {
    provider.on(event, (_ctx: unknown, error: unknown) => log(`idp: ${event}: ${describe(error)}`));
  }

  const callback = provider.callback();
  handler = (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const match = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|abort))?$/.exec(path);
    if (!match?.[1]) {
      if (path === '/auth' && req.method === 'GET') req.url = keepOfflineAccess(req.url ?? '/', clientId);
      callback(req, res);
      return;
    }
    handleInteraction(req, res, match[1], match[2]).catch((error: unknown) => {
      log(`idp: interaction failed: ${describe(error)}`);
      if (!res.headersSent) send(res, renderMessagePage(500, 'Sign-in failed', 'Return to Clearance and try again.'));
      else res.end();
    });
  };

  async function handleInteraction(req: IncomingMessage, res: ServerResponse, uid: string, action?: string) {
    let details: InteractionDetails;
    try {
      details = await provider.interactionDetails(req, res);
    } catch {
      send(res, expiredPage());
      return;
    }
    if (details.uid !== uid) {
      send(res, expiredPage());
      return;
    }
    if (action === undefined) {
      if (req.method !== 'GET') return send(res, methodNotAllowed());
      if (details.prompt.name === 'login')
        return send(res, renderLoginPage({ uid, personas, clientName: 'Clearance' }));
      if (details.prompt.name === 'consent') return grantConsent(req, res, details);
      return send(
        res,
        renderMessagePage(400, 'Sign-in could not continue', `Unexpected step "${details.prompt.name}".`),
      );
    }
    if (action === 'abort') {
      if (req.method !== 'GET' && req.method !== 'POST') return send(res, methodNotAllowed());
      log('idp: sign-in cancelled on the login page');
      await provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'The person cancelled the sign-in.' },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    if (req.method !== 'POST') return send(res, methodNotAllowed());
    const form = await readForm(req);
    const persona = form ? findPersona(personas, form.get('persona') ?? '') : undefined;
    if (!persona || details.prompt.name !== 'login') {
      return send(
        res,
        renderLoginPage({ uid, personas, clientName: 'Clearance', error: 'Choose one of the people listed.' }),
      );
    }
    log(`idp: signed in as ${persona.name} (${persona.id})`);
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: persona.id } },
      { mergeWithLastSubmission: false },
    );
  }

  /** Grants whatever an earlier grant lacks, without asking (the app is the only, first-party client). */
  async function grantConsent(req: IncomingMessage, res: ServerResponse, details: InteractionDetails) {
    const accountId = details.session?.accountId;
    if (!accountId || details.params.client_id !== clientId) {
      return send(res, renderMessagePage(400, 'Sign-in could not continue', 'This client may not be granted access.'));
    }
    const existing = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
    const grant = existing ?? new provider.Grant({ accountId, clientId });
    const missing = details.prompt.details;
    if (missing.missingOIDCScope?.length) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims?.length) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [resource, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(resource, scopes.join(' '));
    }
    const grantId = await grant.save();
    await provider.interactionFinished(
      req,
      res,
      { consent: existing ? {} : { grantId } },
      { mergeWithLastSubmission: true },
    );
  }

  log(`idp: ${issuer} (client ${clientId}, audience ${audience}, personas: ${personas.map((p) => p.id).join(', ')})`);

  return {
    issuer,
    jwksUri: `${issuer}/jwks`,
    caCertPem: tls.caCertPem,
    clientId,
    scopes: [gatewayScope],
    personas,
    async close() {
      await Promise.all([closeServer(server), ipv6 ? closeServer(ipv6) : undefined]);
      await store.flush();
    },
  };
}

/**
 * Makes a `prompt` that would drop `offline_access` keep it, for the native client only.
 *
 * OpenID Connect Core §11 lets a provider ignore `offline_access` unless `prompt` includes
 * `consent`, and `oidc-provider` does; MSAL asks `prompt=login` to let the person choose who to
 * sign in as, and then needs its refresh token to carry `offline_access`. Entra issues one either
 * way; so does this provider (the consent step that `consent` adds is granted without a page).
 */
function keepOfflineAccess(url: string, clientId: string): string {
  const parsed = new URL(url, 'https://localhost');
  const params = parsed.searchParams;
  const scopes = (params.get('scope') ?? '').split(' ');
  const prompts = (params.get('prompt') ?? '').split(' ').filter(Boolean);
  if (params.get('client_id') !== clientId || !scopes.includes('offline_access')) return url;
  if (prompts.length === 0 || prompts.includes('consent') || prompts.includes('none')) return url;
  params.set('prompt', [...prompts, 'consent'].join(' '));
  return `${parsed.pathname}?${params.toString()}`;
}

/** Reads the scopes of `claims={"access_token":{"acrs":{...}}}` (a claims challenge) as authentication contexts. */
function requestedAuthenticationContexts(claims: unknown): string[] {
  if (typeof claims !== 'string' || claims.length > 4096) return [];
  try {
    const parsed = JSON.parse(claims) as { access_token?: { acrs?: { value?: unknown; values?: unknown } } };
    const acrs = parsed.access_token?.acrs;
    const values = acrs?.values ?? (acrs?.value !== undefined ? [acrs.value] : []);
    if (!Array.isArray(values)) return [];
    return values.filter((v): v is string => typeof v === 'string' && /^[A-Za-z0-9_.-]{1,32}$/.test(v));
  } catch {
    return [];
  }
}

function expiredPage(): ProviderPage {
  return renderMessagePage(
    400,
    'This sign-in page has expired',
    'Return to Clearance and choose Sign in again. Sign-in pages work once and for ten minutes.',
  );
}

function methodNotAllowed(): ProviderPage {
  return renderMessagePage(405, 'Not allowed', 'This page cannot be used that way.');
}

function send(res: ServerResponse, page: ProviderPage): void {
  res.writeHead(page.status, page.headers);
  res.end(page.html);
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams | undefined> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) return undefined;
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function listenOnLoopback(server: Server, stateDir: string, requested: number | undefined): Promise<number> {
  if (requested !== undefined) {
    if (!Number.isInteger(requested) || requested < 0 || requested > 65535)
      throw new Error(`Invalid port ${requested}`);
    try {
      await listen(server, requested, '127.0.0.1');
    } catch (error) {
      throw new Error(`The identity provider cannot listen on 127.0.0.1:${requested}: ${describe(error)}`, {
        cause: error,
      });
    }
  } else {
    const previous = await readPreviousPort(stateDir);
    try {
      await listen(server, previous ?? 0, '127.0.0.1');
    } catch {
      await listen(server, 0, '127.0.0.1');
    }
  }
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('The identity provider has no TCP address');
  await writeStateFile(stateDir, PORT_FILE, JSON.stringify({ port: address.port }));
  return address.port;
}

async function readPreviousPort(stateDir: string): Promise<number | undefined> {
  const text = await readStateFile(stateDir, PORT_FILE);
  if (!text) return undefined;
  try {
    const port = (JSON.parse(text) as { port?: unknown }).port;
    return typeof port === 'number' && Number.isInteger(port) && port > 1023 && port < 65536 ? port : undefined;
  } catch {
    return undefined;
  }
}

/** `localhost` may resolve to `::1` first; answer there too when the machine has IPv6 loopback. */
async function alsoListenOnIpv6(
  port: number,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  tls: { readonly keyPem: string; readonly certPem: string },
  log: (line: string) => void,
): Promise<Server | undefined> {
  const server = createServer({ key: tls.keyPem, cert: tls.certPem }, handler);
  try {
    await listen(server, port, '::1');
    return server;
  } catch (error) {
    log(`idp: not listening on [::1]:${port} (${describe(error)}); 127.0.0.1 only`);
    return undefined;
  }
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => {
      server.off('listening', onListening);
      reject(error);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const detail = (error as Error & { error_description?: string }).error_description;
    return detail ? `${error.message} (${detail})` : error.message;
  }
  return String(error);
}
