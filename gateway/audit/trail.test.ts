import { describe, expect, it } from 'vitest';
import type { AuditEntry, AuditLog, AuditRecord } from '../store/audit-log';
import { AuditTrail } from './trail';

/** A store whose appends land only when the test says (the edge of the unit). */
function heldStore() {
  const held: { entry: AuditEntry; land: (ok: boolean) => void }[] = [];
  let seq = 0;
  const store: AuditLog = {
    append: (entry) =>
      new Promise<AuditRecord>((resolve, reject) =>
        held.push({
          entry,
          land: (ok) =>
            ok
              ? resolve({
                  seq: ++seq,
                  decisionId: `dec_${seq}`,
                  at: '',
                  kind: entry.kind,
                  subject: null,
                  data: entry.data,
                  prevHash: '',
                  hash: `h${seq}`,
                })
              : reject(new Error('disk full')),
        }),
      ),
    get: async () => undefined,
    list: async () => [],
    verifyChain: async () => ({ ok: true, count: 0, head: '' }),
  };
  return { store, held };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('AuditTrail.settle', () => {
  it('waits for every append in flight, failed ones too, and moves the head only on success', async () => {
    const { store, held } = heldStore();
    const trail = new AuditTrail(store);
    await trail.settle();
    const first = trail.append({ kind: 'access', data: {} });
    const failing = trail.append({ kind: 'completion', data: {} });
    failing.catch(() => {});
    let settled = false;
    void trail.settle().then(() => (settled = true));
    held[0]!.land(true);
    await first;
    await tick();
    expect(settled).toBe(false);
    // One started while waiting is waited for too.
    const third = trail.append({ kind: 'access', data: {} });
    held[1]!.land(false);
    await expect(failing).rejects.toThrow('disk full');
    await tick();
    expect(settled).toBe(false);
    held[2]!.land(true);
    await third;
    await tick();
    expect(settled).toBe(true);
    expect(await trail.head()).toEqual({ seq: 2, hash: 'h2' });
  });
});
