import { readFileSync } from 'node:fs';

/**
 * Fails when npm scripts run on another Node than the one the project pins.
 *
 * The pinned Node (the `node` devDependency) puts itself first on every npm script's PATH; a script
 * started some other way, or an install that lost it, would test on the system's Node instead.
 */
const pinned = (JSON.parse(readFileSync('package.json', 'utf8')) as { devDependencies: Record<string, string> })
  .devDependencies.node;
const running = process.versions.node;
if (!pinned || running !== pinned) {
  console.error(
    `The tests must run on Node ${pinned ?? '(not pinned)'}, the project's pinned runtime, but this is Node ${running}. ` +
      'Run them through npm (npm test), after npm install.',
  );
  process.exit(1);
}
console.log(`Node ${running} (pinned)`);
