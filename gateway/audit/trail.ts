import { currentRequest, type RequestObservation } from '../observability/context';
import type { AuditEntry, AuditLog, AuditRecord, ChainVerification } from '../store/audit-log';

/** The newest record of a chain: its sequence number (the chain's length) and hash. */
export interface AuditHead {
  readonly seq: number;
  readonly hash: string;
}

/** A log that can say where its chain ends without walking it. */
export interface AuditLogWithHead extends AuditLog {
  head(): Promise<AuditHead | undefined>;
}

/**
 * The gateway's audit log as every route uses it: the store's log plus the request id and the head.
 *
 * Each record appended while a request is handled carries that request's id (`data.requestId`),
 * the one in its `x-request-id` header and request log line. The trail also remembers the newest
 * record it saw committed (what a signed checkpoint covers) and which requests were audited, so
 * the error handler can record a refusal no route recorded.
 */
export class AuditTrail implements AuditLog {
  private newest: AuditHead | undefined;
  private readonly audited = new WeakSet<RequestObservation>();
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(private readonly inner: AuditLog) {}

  append(entry: AuditEntry): Promise<AuditRecord> {
    const observation = currentRequest();
    if (observation) this.audited.add(observation);
    const data =
      observation && entry.data.requestId === undefined
        ? { ...entry.data, requestId: observation.requestId }
        : entry.data;
    // A completion record is appended once the answer has been sent: nobody waits for it, so it
    // may share the next call's commit and fsync (SQLite; it still resolves once durable).
    const options = entry.kind === 'completion' ? { deferrable: true } : {};
    const pending = this.inner.append({ ...entry, data }, options).then((record) => {
      if (!this.newest || record.seq > this.newest.seq) this.newest = { seq: record.seq, hash: record.hash };
      return record;
    });
    const tracked = pending.catch(() => undefined).finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
    return pending;
  }

  /** Whether a record was appended while handling the request `observation` describes. */
  wasAudited(observation: RequestObservation | undefined): boolean {
    return observation !== undefined && this.audited.has(observation);
  }

  /**
   * Starts from the newest record already stored, when the store can tell (SQLite).
   *
   * Called once at start, before any append; later only appends this instance saw become
   * durable move the head, so a checkpoint never covers a record that could still be lost.
   */
  async init(): Promise<void> {
    const stored = 'head' in this.inner ? await (this.inner as AuditLogWithHead).head() : undefined;
    if (stored && (!this.newest || stored.seq > this.newest.seq)) this.newest = stored;
  }

  /**
   * The newest durable record this instance knows of: the stored head at start, then the newest
   * append that resolved. Several instances sharing one chain each know their own.
   */
  head(): Promise<AuditHead | undefined> {
    return Promise.resolve(this.newest);
  }

  /** Resolves once every append started so far has committed or failed. */
  async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  get(decisionId: string): Promise<AuditRecord | undefined> {
    return this.inner.get(decisionId);
  }

  list(options?: { readonly afterSeq?: number; readonly limit?: number }): Promise<readonly AuditRecord[]> {
    return this.inner.list(options);
  }

  verifyChain(): Promise<ChainVerification> {
    return this.inner.verifyChain();
  }
}
