import { cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { PostureCheckId } from '../shared/device';
import { startIdentityProvider } from './idp/provider';
import type { Persona } from './idp/personas';
import { DEFAULT_POLICIES_DIR } from './policy/engine';
import type { DeviceTrustOptions } from './device/attestation/options';
import { startGateway, type RunningGateway } from './server';

/** The audience the development identity provider issues gateway tokens for. */
export const GATEWAY_AUDIENCE = 'api://clearance-gateway';

/** Options for `startStack`. */
export interface StackOptions {
  /** Holds `idp/`, `gateway/`, `policies/` (unless `policiesDir` is given) and `idp-ca.pem`. */
  readonly stateDir: string;
  /** Default: the identity provider's previous port, else a free one. */
  readonly idpPort?: number;
  /** Default 0 (a free port). */
  readonly gatewayPort?: number;
  /** Policies to enforce and watch; default a copy of gateway/policies in `<stateDir>/policies`. */
  readonly policiesDir?: string;
  readonly demoTokensPerSecond?: number;
  /** Posture checks that must pass; the gateway's default when omitted. */
  readonly requiredChecks?: readonly PostureCheckId[];
  /** Enrolment policy, TPM manufacturer roots, device certificates; the gateway's default (open) when omitted. */
  readonly deviceTrust?: DeviceTrustOptions;
  readonly log?: (line: string) => void;
}

/** The development identity provider and the gateway, wired together. */
export interface RunningStack {
  readonly idpUrl: string;
  readonly gatewayUrl: string;
  /** CA of the identity provider's TLS certificate (also written to `<stateDir>/idp-ca.pem`). */
  readonly caCertPem: string;
  readonly caCertPath: string;
  readonly policiesDir: string;
  readonly adminToken: string;
  readonly personas: readonly Persona[];
  readonly clientId: string;
  readonly scopes: readonly string[];
  readonly gateway: RunningGateway;
  close(): Promise<void>;
}

/**
 * Starts the development identity provider, then the gateway trusting it.
 *
 * The policies are copied into the state folder on first start only, so edits made there
 * (to try hot reload) survive restarts; delete the folder to get the shipped policies back.
 */
export async function startStack(options: StackOptions): Promise<RunningStack> {
  const stateDir = resolve(options.stateDir);
  const log = options.log ?? ((line: string) => console.log(line));
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  let policiesDir = options.policiesDir;
  if (policiesDir === undefined) {
    policiesDir = join(stateDir, 'policies');
    if (!existsSync(policiesDir)) cpSync(DEFAULT_POLICIES_DIR, policiesDir, { recursive: true });
  }
  const idp = await startIdentityProvider({
    stateDir: join(stateDir, 'idp'),
    ...(options.idpPort !== undefined ? { port: options.idpPort } : {}),
    gatewayAudience: GATEWAY_AUDIENCE,
    log: (line) => log(`[idp] ${line}`),
  });
  const caCertPath = join(stateDir, 'idp-ca.pem');
  writeFileSync(caCertPath, idp.caCertPem);
  let gateway: RunningGateway;
  try {
    gateway = await startGateway({
      stateDir: join(stateDir, 'gateway'),
      port: options.gatewayPort ?? 0,
      policiesDir,
      identityProvider: {
        issuer: idp.issuer,
        jwksUri: idp.jwksUri,
        audience: GATEWAY_AUDIENCE,
        caCertPem: idp.caCertPem,
      },
      discovery: {
        identityProvider: { authority: idp.issuer, clientId: idp.clientId, scopes: idp.scopes, protocol: 'OIDC' },
        supportContact: 'it-help@clearance.example',
      },
      ...(options.requiredChecks ? { requiredChecks: options.requiredChecks } : {}),
      ...(options.deviceTrust ? { deviceTrust: options.deviceTrust } : {}),
      ...(options.demoTokensPerSecond !== undefined ? { demoTokensPerSecond: options.demoTokensPerSecond } : {}),
      log: (line) => log(`[gateway] ${line}`),
    });
  } catch (error) {
    await idp.close();
    throw error;
  }
  return {
    idpUrl: idp.issuer,
    gatewayUrl: gateway.url,
    caCertPem: idp.caCertPem,
    caCertPath,
    policiesDir,
    adminToken: gateway.adminToken,
    personas: idp.personas,
    clientId: idp.clientId,
    scopes: idp.scopes,
    gateway,
    close: async () => {
      await gateway.close();
      await idp.close();
    },
  };
}
