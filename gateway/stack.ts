import { cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { PostureCheckId } from '../shared/device';
import type { DeviceGateScope } from '../shared/discovery';
import { startIdentityProvider } from './idp/provider';
import type { Persona } from './idp/personas';
import { DEFAULT_POLICIES_DIR } from './policy/engine';
import type { DeviceTrustOptions } from './device/attestation/options';
import { startBalancer, type RunningBalancer } from './balancer';
import { connectSharedState, type SharedState } from './cluster';
import { startGateway, type GatewayOptions, type RunningGateway } from './server';

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
  /** Discovery's `device_policy.scope`; the gateway's default (`app`) when omitted. */
  readonly deviceGateScope?: DeviceGateScope;
  /** Enrolment policy, TPM manufacturer roots, device certificates; the gateway's default (open) when omitted. */
  readonly deviceTrust?: DeviceTrustOptions;
  /** One gateway terminates TLS itself with this key and certificate (PEM), e.g. to try mutual TLS. */
  readonly gatewayTls?: { readonly key: string; readonly cert: string };
  /** Gateway instances; more than one needs `sharedState` and puts a round-robin balancer on `gatewayPort`. Default 1. */
  readonly instances?: number;
  /** PostgreSQL and Redis every instance shares; default SQLite and memory in `<stateDir>/gateway`. */
  readonly sharedState?: { readonly postgresUrl: string; readonly redisUrl: string };
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
  /** The first (or only) instance. */
  readonly gateway: RunningGateway;
  /** Where each instance really listens (behind `gatewayUrl` when there are several). */
  readonly instanceUrls: readonly string[];
  readonly gateways: readonly RunningGateway[];
  close(): Promise<void>;
}

/**
 * Starts the development identity provider, then the gateway trusting it.
 *
 * The policies are copied into the state folder on first start only, so edits made there
 * (to try hot reload) survive restarts; delete the folder to get the shipped policies back.
 */
export async function startStack(options: StackOptions): Promise<RunningStack> {
  const instances = options.instances ?? 1;
  if (!Number.isInteger(instances) || instances < 1)
    throw new Error(`instances must be a whole number ≥ 1, got ${instances}`);
  if (instances > 1 && options.gatewayTls) throw new Error('gatewayTls is for a single instance');
  if (instances > 1 && !options.sharedState) {
    throw new Error('Several instances need shared state: PostgreSQL and Redis (--store postgres)');
  }
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
  const settings: GatewayOptions = {
    stateDir: join(stateDir, 'gateway'),
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
    ...(options.deviceGateScope ? { deviceGateScope: options.deviceGateScope } : {}),
    ...(options.deviceTrust ? { deviceTrust: options.deviceTrust } : {}),
    ...(options.gatewayTls ? { tls: options.gatewayTls } : {}),
    ...(options.demoTokensPerSecond !== undefined ? { demoTokensPerSecond: options.demoTokensPerSecond } : {}),
  };
  const gateways: RunningGateway[] = [];
  const shared: SharedState[] = [];
  const instanceUrls: string[] = [];
  let balancer: RunningBalancer | undefined;
  const closeAll = async () => {
    await balancer?.close();
    for (const gateway of gateways) await gateway.close();
    for (const state of shared) await state.close();
    await idp.close();
  };
  try {
    if (instances > 1) balancer = await startBalancer(options.gatewayPort ?? 0);
    const publicUrl = balancer ? `http://127.0.0.1:${balancer.port}` : undefined;
    // One after the other: the first creates the signing keys and admin token the others read.
    for (let index = 0; index < instances; index++) {
      const state = options.sharedState
        ? await connectSharedState({ ...options.sharedState, log: (line) => log(`[gateway ${index + 1}] ${line}`) })
        : undefined;
      if (state) shared.push(state);
      const port = balancer ? await freePort() : (options.gatewayPort ?? 0);
      const gateway = await startGateway({
        ...settings,
        port,
        ...(publicUrl ? { publicUrl } : {}),
        ...(state ? state.options : {}),
        log: (line) => log(instances > 1 ? `[gateway ${index + 1}] ${line}` : `[gateway] ${line}`),
      });
      gateways.push(gateway);
      instanceUrls.push(balancer ? `http://127.0.0.1:${port}` : gateway.url);
    }
    balancer?.setBackends(instanceUrls.map((url) => Number(new URL(url).port)));
  } catch (error) {
    await closeAll();
    throw error;
  }
  const gateway = gateways[0]!;
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
    instanceUrls,
    gateways,
    close: closeAll,
  };
}

/** A loopback TCP port nothing listens on right now. */
async function freePort(): Promise<number> {
  const balancer = await startBalancer(0);
  const { port } = balancer;
  await balancer.close();
  return port;
}
