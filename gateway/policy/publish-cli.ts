import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import { publishPolicies } from './publish';

// npm run policy:publish -- <source folder> <gateway policies folder> [--by <name>]
const args = process.argv.slice(2);
const byIndex = args.indexOf('--by');
const publishedBy = byIndex >= 0 ? args[byIndex + 1] : userInfo().username;
// Without --by (byIndex -1) nothing is dropped: `byIndex + 1` would otherwise drop the source folder.
const [source, target] = byIndex >= 0 ? args.filter((_arg, index) => index !== byIndex && index !== byIndex + 1) : args;
if (!source || !target) {
  console.error('Usage: npm run policy:publish -- <source folder> <gateway policies folder> [--by <name>]');
  process.exit(2);
}
try {
  const result = publishPolicies(resolve(source), resolve(target), publishedBy ? { publishedBy } : {});
  console.log(
    `Published ${result.policies} policies in ${result.files.length} files to ${resolve(target)}` +
      (result.removed.length > 0 ? `; removed ${result.removed.join(', ')}` : '') +
      '. The gateway applies the set once it sees the new policy-manifest.json (check GET /healthz).',
  );
} catch (error) {
  console.error(`Not published: ${(error as Error).message}`);
  process.exit(1);
}
