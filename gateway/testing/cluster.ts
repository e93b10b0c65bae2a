import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectSharedState, type SharedState } from '../cluster';
import { DEFAULT_POLICIES_DIR } from '../policy/engine';
import { startGateway, type GatewayOptions, type RunningGateway } from '../server';
import { startTestIdentityProvider, type TestIdentityProvider } from './identity-provider';
import { freePort, startTestPostgres, startTestRedis, type TestService } from './services';

/** One gateway instance of a test cluster. */
export interface ClusterInstance {
  readonly gateway: RunningGateway;
  readonly shared: SharedState;
  /** Where this instance really listens. */
  readonly address: string;
}

/**
 * Gateway instances on one PostgreSQL and one Redis (real servers from Debian's packages, on free
 * loopback ports), behind one public URL as a load balancer would present them, with the test
 * identity provider. The first instance creates the signing keys the others use.
 */
export class TestCluster {
  readonly instances: ClusterInstance[] = [];

  private constructor(
    readonly postgres: TestService,
    readonly redis: TestService,
    readonly idp: TestIdentityProvider,
    readonly dir: string,
    readonly policiesDir: string,
    /** The URL clients see (DPoP `htu`); no instance listens on it. */
    readonly publicUrl: string,
  ) {}

  /** Starts the servers and `count` instances, one after the other, each with `options`. */
  static async start(count: number, options: Partial<GatewayOptions> = {}): Promise<TestCluster> {
    const [postgres, redis, idp] = await Promise.all([
      startTestPostgres(),
      startTestRedis(),
      startTestIdentityProvider(),
    ]);
    const dir = mkdtempSync(join(tmpdir(), 'clearance-cluster-'));
    const policiesDir = join(dir, 'policies');
    cpSync(DEFAULT_POLICIES_DIR, policiesDir, { recursive: true });
    const cluster = new TestCluster(postgres, redis, idp, dir, policiesDir, `http://127.0.0.1:${await freePort()}`);
    for (let i = 0; i < count; i++) cluster.instances.push(await cluster.startInstance(options));
    return cluster;
  }

  private async startInstance(options: Partial<GatewayOptions>): Promise<ClusterInstance> {
    const shared = await connectSharedState({ postgresUrl: this.postgres.url, redisUrl: this.redis.url });
    const port = await freePort();
    const idp = this.idp;
    const gateway = await startGateway({
      stateDir: join(this.dir, 'gateway'),
      port,
      publicUrl: this.publicUrl,
      policiesDir: this.policiesDir,
      // Only the fan-out may carry a policy change from one instance to the other in these tests.
      reloadDebounceMs: 600_000,
      reconcileSeconds: 600,
      identityProvider: { issuer: idp.issuer, jwksUri: idp.jwksUri, audience: idp.audience, caCertPem: idp.caCertPem },
      discovery: {
        identityProvider: {
          authority: idp.issuer,
          clientId: 'clearance-desktop',
          scopes: ['openid'],
          protocol: 'OIDC',
        },
      },
      processMetrics: false,
      log: () => {},
      ...options,
      ...shared.options,
    });
    return { gateway, shared, address: `http://127.0.0.1:${port}` };
  }

  async close(): Promise<void> {
    for (const instance of this.instances) {
      await instance.gateway.close();
      await instance.shared.close();
    }
    await Promise.all([this.postgres.stop(), this.redis.stop(), this.idp.close()]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
