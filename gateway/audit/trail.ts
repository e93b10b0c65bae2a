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
  /** Appends started and not yet committed or failed. */
  private inFlight = 0;
  /** `settle` calls waiting for `inFlight` to reach 0. */
  private readonly idle: (() => void)[] = [];

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
    const appended = this.inner.append({ ...entry, data }, options);
    // Counted rather than kept in a set through catch/finally chains: two promises fewer per record.
    this.inFlight++;
    return appended.then(
      (record) => {
        if (!this.newest || record.seq > this.newest.seq) this.newest = { seq: record.seq, hash: record.hash };
        this.landed();
        return record;
      },
      (error: unknown) => {
        this.landed();
        throw error;
      },
    );
  }

  /** One append committed or failed; wakes `settle` once none is left. */
  private landed(): void {
    this.inFlight--;
    if (this.inFlight === 0) for (const resolve of this.idle.splice(0)) resolve();
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
    if (this.inFlight > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
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
