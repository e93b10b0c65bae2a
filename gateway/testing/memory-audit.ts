import type { AuditEntry, AuditLog, AuditRecord } from '../store/audit-log';

/**
 * An audit log in memory for unit tests: what was appended, in order, records numbered from 1
 * (`dec_1`, …), appends of chosen kinds failing as a store that is down would, and a wait for a
 * record that is written after the answer (a completion's).
 */
export class MemoryAuditLog implements AuditLog {
  readonly entries: AuditEntry[] = [];
  /** Kinds whose `append` throws `audit store down`. */
  readonly failing = new Set<string>();
  private waiters: (() => void)[] = [];

  async append(entry: AuditEntry): Promise<AuditRecord> {
    if (this.failing.has(entry.kind)) throw new Error('audit store down');
    this.entries.push(entry);
    for (const wake of this.waiters.splice(0)) wake();
    const seq = this.entries.length;
    return {
      seq,
      decisionId: `dec_${seq}`,
      at: '2026-01-01T00:00:00.000Z',
      kind: entry.kind,
      subject: entry.subject ?? null,
      data: entry.data,
      prevHash: '',
      hash: '',
    };
  }
  async get(): Promise<AuditRecord | undefined> {
    return undefined;
  }
  async list(): Promise<readonly AuditRecord[]> {
    return [];
  }
  async verifyChain() {
    return { ok: true as const, count: this.entries.length, head: '' };
  }
  /** The data of every record of `kind`, in order. */
  of(kind: string): Record<string, unknown>[] {
    return this.entries.filter((entry) => entry.kind === kind).map((entry) => entry.data as Record<string, unknown>);
  }
  /** Resolves once a record of `kind` is there, with the last one. */
  async waitFor(kind: string): Promise<Record<string, unknown>> {
    while (this.of(kind).length === 0) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.of(kind).at(-1)!;
  }
}
