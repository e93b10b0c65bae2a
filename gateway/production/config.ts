import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { PostureCheckId } from '../../shared/device';
import { DeviceGateScope } from '../../shared/discovery';
import { AppVersion } from '../../shared/update';
import type { GatewayOptions } from '../server';

const httpsUrl = z.url({ protocol: /^https$/, error: 'must be an https:// URL' });
const audience = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

/**
 * The gateway's production configuration file (`gateway.json`), as docs/protocol.md describes it.
 *
 * Strict: an unknown or misspelt key is an error, never silently ignored. Paths are relative to the file.
 */
export const ProductionConfig = z
  .object({
    listen: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(1).max(65535),
      })
      .strict(),
    /** The https URL clients use; TLS ends in front of the gateway (a reverse proxy or load balancer). */
    publicUrl: httpsUrl,
    stateDir: z.string().min(1),
    policiesDir: z.string().min(1).optional(),
    catalogFile: z.string().min(1).optional(),
    /** A file holding the admin bearer token (at least 32 characters); default `<stateDir>/admin-token`. */
    adminTokenFile: z.string().min(1).optional(),
    identityProvider: z.discriminatedUnion('kind', [
      z
        .object({
          kind: z.literal('entra'),
          tenantId: z.string().min(1),
          audience,
          authorityHost: httpsUrl.optional(),
        })
        .strict(),
      z
        .object({
          kind: z.literal('oidc'),
          issuer: httpsUrl,
          jwksUri: httpsUrl,
          audience,
          caCertFile: z.string().min(1).optional(),
          algorithms: z.array(z.string().min(1)).min(1).optional(),
        })
        .strict(),
    ]),
    claims: z
      .object({
        groupsClaim: z.string().min(1),
        usPersonGroup: z.string().min(1),
        verificationPendingGroup: z.string().min(1),
        subjectClaim: z.string().min(1),
        usernameClaim: z.string().min(1),
      })
      .partial()
      .strict()
      .optional(),
    discovery: z
      .object({
        identityProvider: z
          .object({
            authority: httpsUrl,
            clientId: z.string().min(1),
            scopes: z.array(z.string().min(1)).min(1),
            protocol: z.enum(['AAD', 'OIDC']),
          })
          .strict(),
        supportContact: z.string().min(1).optional(),
        minOsVersions: z.record(z.string(), z.string()).optional(),
        minAppVersion: AppVersion.optional(),
      })
      .strict(),
    requiredChecks: z.array(PostureCheckId).optional(),
    /** `app` (default): a non-compliant device is kept out; `models`: only from models requiring a compliant one. */
    deviceGateScope: DeviceGateScope.optional(),
    /** The TLS proxy's addresses (IPs): only from them is X-Forwarded-For read (per-address limit, audit). */
    trustedProxies: z
      .array(z.string().refine((address) => isIP(address) !== 0, { message: 'must be an IP address' }))
      .optional(),
    /**
     * Several instances: PostgreSQL and Redis shared by all, their URLs (with credentials) read
     * from the environment variables named here, never from the file.
     */
    sharedState: z
      .object({
        postgresUrlEnv: z.string().min(1).default('CLEARANCE_POSTGRES_URL'),
        redisUrlEnv: z.string().min(1).default('CLEARANCE_REDIS_URL'),
      })
      .strict()
      .optional(),
  })
  .strict();
export type ProductionConfig = z.infer<typeof ProductionConfig>;

/**
 * Reads and checks the configuration file; throws an error naming each wrong setting.
 */
export async function readProductionConfig(path: string): Promise<GatewayOptions> {
  const config = await readProductionConfigFile(path);
  return toGatewayOptions(config, dirname(resolve(path)), (file) => readFile(file, 'utf8'));
}

/** Reads and checks the configuration file without reading the files it names. */
export async function readProductionConfigFile(path: string): Promise<ProductionConfig> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new Error(`Cannot read the gateway configuration ${path}: ${(error as Error).message}`, { cause: error });
  }
  const parsed = ProductionConfig.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `  ${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new Error(`The gateway configuration ${path} is not valid:\n${issues.join('\n')}`);
  }
  return parsed.data;
}

/**
 * The PostgreSQL and Redis URLs of a configuration with `sharedState`, from the environment.
 *
 * A missing variable stops the start: an instance that silently fell back to its own SQLite
 * would not see the others' revocations, suspensions or replayed proofs.
 */
export function sharedStateUrls(
  config: ProductionConfig,
  env: Readonly<Record<string, string | undefined>>,
): { readonly postgresUrl: string; readonly redisUrl: string } | undefined {
  if (!config.sharedState) return undefined;
  const read = (name: string, example: string) => {
    const value = env[name];
    if (!value) throw new Error(`sharedState: set ${name} (${example}) in the gateway's environment`);
    return value;
  };
  return {
    postgresUrl: read(config.sharedState.postgresUrlEnv, 'postgres://user:password@host:5432/clearance'),
    redisUrl: read(config.sharedState.redisUrlEnv, 'redis://:password@host:6379'),
  };
}

/**
 * Turns a checked configuration into the gateway's start options, reading the files it names.
 */
export async function toGatewayOptions(
  config: ProductionConfig,
  baseDir: string,
  read: (path: string) => Promise<string>,
): Promise<GatewayOptions> {
  const at = (path: string) => (isAbsolute(path) ? path : resolve(baseDir, path));
  const idp = config.identityProvider;
  const adminToken = config.adminTokenFile ? (await read(at(config.adminTokenFile))).trim() : undefined;
  if (adminToken !== undefined && adminToken.length < 32) {
    throw new Error(`adminTokenFile: ${config.adminTokenFile} must hold a token of at least 32 characters`);
  }
  return {
    stateDir: at(config.stateDir),
    host: config.listen.host,
    port: config.listen.port,
    publicUrl: config.publicUrl,
    ...(config.policiesDir ? { policiesDir: at(config.policiesDir) } : {}),
    ...(config.catalogFile ? { catalog: at(config.catalogFile) } : {}),
    ...(adminToken ? { adminToken } : {}),
    identityProvider:
      idp.kind === 'entra'
        ? {
            kind: 'entra',
            tenantId: idp.tenantId,
            audience: idp.audience,
            ...(idp.authorityHost ? { authorityHost: idp.authorityHost } : {}),
          }
        : {
            kind: 'oidc',
            issuer: idp.issuer,
            jwksUri: idp.jwksUri,
            audience: idp.audience,
            ...(idp.caCertFile ? { caCertPem: await read(at(idp.caCertFile)) } : {}),
            ...(idp.algorithms ? { algorithms: idp.algorithms } : {}),
          },
    ...(config.claims ? { claims: config.claims } : {}),
    discovery: {
      identityProvider: config.discovery.identityProvider,
      ...(config.discovery.supportContact ? { supportContact: config.discovery.supportContact } : {}),
      ...(config.discovery.minOsVersions ? { minOsVersions: config.discovery.minOsVersions } : {}),
      ...(config.discovery.minAppVersion ? { minAppVersion: config.discovery.minAppVersion } : {}),
    },
    ...(config.requiredChecks ? { requiredChecks: config.requiredChecks } : {}),
    ...(config.deviceGateScope ? { deviceGateScope: config.deviceGateScope } : {}),
    ...(config.trustedProxies ? { trustedProxies: config.trustedProxies } : {}),
  };
}
