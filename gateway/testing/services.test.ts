import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { Redis } from 'ioredis';
import { startTestPostgres, startTestRedis } from './services';

describe('test servers', () => {
  it('starts a real PostgreSQL and Redis on loopback and stops them by pid', async () => {
    const [postgres, redis] = await Promise.all([startTestPostgres(), startTestRedis()]);
    try {
      const client = new pg.Client({ connectionString: postgres.url });
      await client.connect();
      const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version') AS v");
      expect(rows[0]?.v).toMatch(/^15\./);
      await client.end();
      const connection = new Redis(redis.url);
      expect(await connection.ping()).toBe('PONG');
      connection.disconnect();
    } finally {
      await Promise.all([postgres.stop(), redis.stop()]);
    }
    const refused = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    refused.on('error', () => {});
    await expect(refused.connect()).rejects.toThrow();
  });
});
