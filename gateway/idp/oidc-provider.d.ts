/**
 * The part of `oidc-provider@9` the development identity provider uses (the package ships no types).
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  /** An interaction (login or consent) as `interactionDetails` answers it. */
  export interface InteractionDetails {
    readonly uid: string;
    readonly prompt: {
      readonly name: string;
      readonly reasons: readonly string[];
      readonly details: {
        readonly missingOIDCScope?: readonly string[];
        readonly missingOIDCClaims?: readonly string[];
        readonly missingResourceScopes?: Readonly<Record<string, readonly string[]>>;
      };
    };
    readonly params: Readonly<Record<string, unknown>> & { readonly client_id?: string };
    readonly session?: { readonly accountId: string };
    readonly grantId?: string;
  }

  /** What an interaction ends with. */
  export type InteractionResult =
    | { readonly login: { readonly accountId: string } }
    | { readonly consent: { readonly grantId?: string } }
    | { readonly error: string; readonly error_description?: string };

  /** A grant: what a person allowed a client. */
  export class Grant {
    constructor(properties: { accountId?: string; clientId?: string });
    readonly accountId?: string;
    readonly clientId?: string;
    addOIDCScope(scope: string): void;
    addOIDCClaims(claims: readonly string[]): void;
    addResourceScope(resource: string, scope: string): void;
    save(): Promise<string>;
    static find(id: string): Promise<Grant | undefined>;
  }

  /** An OIDC client as the provider holds it. */
  export interface ProviderClient {
    readonly clientId: string;
    grantTypeAllowed(type: string): boolean;
    redirectUriAllowed(uri: string): boolean;
  }

  /** The koa context `oidc-provider` passes to its configuration functions. */
  export interface ProviderContext {
    readonly oidc: {
      readonly client?: ProviderClient;
      readonly body?: Readonly<Record<string, unknown>>;
      readonly params?: Readonly<Record<string, unknown>>;
      readonly session?: { readonly accountId?: string; grantIdFor(clientId: string): string | undefined };
      readonly result?: { readonly consent?: { readonly grantId?: string } };
      readonly provider: Provider;
    };
    type: string;
    body: unknown;
    status: number;
    set(header: string, value: string): void;
  }

  /** A token as `extraTokenClaims` sees it. */
  export interface ProviderToken {
    readonly kind: string;
    readonly accountId?: string;
    readonly clientId?: string;
  }

  export class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>);
    readonly issuer: string;
    readonly Grant: typeof Grant;
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
    interactionFinished(
      req: IncomingMessage,
      res: ServerResponse,
      result: InteractionResult,
      options?: { mergeWithLastSubmission?: boolean },
    ): Promise<void>;
    on(event: string, listener: (...args: unknown[]) => void): this;
  }

  export const errors: {
    readonly InvalidTarget: new (description?: string) => Error;
    readonly SessionNotFound: new (description?: string) => Error;
    readonly InteractionRequired: new (description?: string) => Error;
  };

  export default Provider;
}
