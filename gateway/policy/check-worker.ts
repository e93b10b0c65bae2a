import { parentPort } from 'node:worker_threads';
import { inspectPolicies } from './check';

/**
 * The policy check thread: reads a policies folder and runs Cedar's parse and strict schema
 * validation on it (`inspectPolicies`), off the gateway's event loop. Started by
 * `PolicyChecker`; one request at a time, answered with `{ id, inspection }`.
 */
parentPort!.on('message', (request: { readonly id: number; readonly dir: string }) => {
  parentPort!.postMessage({ id: request.id, inspection: inspectPolicies(request.dir) });
});
