import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { AuditUnverifiable, formatVerdict, verifyStateDir, type StateDirVerification } from '../gateway/audit/verify';

// npm run audit:verify -- <state-dir> [--public-key <jwk file>] [--checkpoints <file>]… [--postgres <url>] [--json]
// Exit status: 0 intact, 1 tampered, 2 could not be checked.
const USAGE =
  'Usage: npm run audit:verify -- <gateway state folder> [--public-key <public JWK file>] ' +
  '[--checkpoints <file>]… [--postgres <connection URL>] [--json]';

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse();
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1) {
    console.error(USAGE);
    return 2;
  }
  const options: { -readonly [K in keyof StateDirVerification]: StateDirVerification[K] } = {
    stateDir: resolve(positionals[0]!),
    checkpointFiles: (values.checkpoints ?? []).map((file) => resolve(file)),
  };
  if (values['public-key']) options.publicKeyFile = resolve(values['public-key']);
  let close = async () => {};
  try {
    if (values.postgres) {
      const { default: pg } = await import('pg');
      const { PostgresAuditLog } = await import('../gateway/store/postgres');
      const pool = new pg.Pool({ connectionString: values.postgres, max: 1 });
      close = () => pool.end();
      options.log = new PostgresAuditLog(pool);
    }
    const verdict = await verifyStateDir(options);
    console.log(values.json ? JSON.stringify(verdict, null, 2) : formatVerdict(verdict));
    return verdict.ok ? 0 : 1;
  } catch (error) {
    console.error(
      error instanceof AuditUnverifiable
        ? `VERDICT: NOT CHECKED. ${error.message}`
        : `VERDICT: NOT CHECKED. The audit could not be read: ${(error as Error).message}`,
    );
    return 2;
  } finally {
    await close();
  }
}

function parse() {
  return parseArgs({
    allowPositionals: true,
    options: {
      'public-key': { type: 'string' },
      checkpoints: { type: 'string', multiple: true },
      postgres: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
}

process.exitCode = await main();
