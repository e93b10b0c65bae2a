import { bench, describe } from 'vitest';
import { Catalog, DEFAULT_CATALOG_PATH } from '../gateway/catalog';
import { DEFAULT_POLICIES_DIR, PolicyEngine, type DecisionRequest } from '../gateway/policy/engine';

/** Cedar decisions as the gateway makes them on every chat call (ENVIRONMENT.md: cache by inputs). */
const catalog = Catalog.fromFile(DEFAULT_CATALOG_PATH);
const cached = PolicyEngine.create({ policiesDir: DEFAULT_POLICIES_DIR, log: () => {} });
const uncached = PolicyEngine.create({ policiesDir: DEFAULT_POLICIES_DIR, log: () => {}, cacheSize: 0 });
const device = { assurance: 'software', compliant: true, failedChecks: [] } as const;
const requests: DecisionRequest[] = catalog.models.map((model, index) => ({
  userId: `user-${index}`,
  principal: { groups: ['research', 'us-persons'], usPerson: true, verificationPending: false },
  device,
  model,
}));
let next = 0;

describe('policy decision', () => {
  bench('uncached (statefulIsAuthorized, pre-parsed policies)', () => {
    uncached.decide(requests[next++ % requests.length]!);
  });
  bench('cached (same policy version, attributes, device, model)', () => {
    cached.decide(requests[next++ % requests.length]!);
  });
});
