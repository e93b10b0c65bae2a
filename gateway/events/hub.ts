import { randomBytes } from 'node:crypto';
import { CLIENT_EVENT } from '../../shared/protocol';
import { formatSseEvent } from '../http/sse';

/** Events a client's `GET /v1/events` stream carries. */
export type ClientEvent =
  | { readonly type: typeof CLIENT_EVENT.entitlementsChanged; readonly data: { readonly ver: number } }
  | {
      readonly type: typeof CLIENT_EVENT.sessionRevoked;
      readonly data: { readonly reason: string; readonly detail: string };
    };

/** Where a subscriber's events go. */
export interface EventSink {
  /** Writes one serialized event. */
  write(text: string): void;
  /** Ends the stream (after `session.revoked`). */
  close(): void;
}

/** How a subscription started. */
export interface Subscribed {
  dispose(): void;
  /** True when `Last-Event-ID` could not be honoured (unknown, from a previous run, or too old). */
  readonly needsResync: boolean;
  readonly replayed: number;
}

interface Buffered {
  readonly seq: number;
  readonly id: string;
  readonly userId: string;
  /** Only streams of this device key receive the event; undefined means every stream of the user. */
  readonly jkt: string | undefined;
  readonly event: ClientEvent;
}

interface Subscriber {
  readonly userId: string;
  readonly jkt: string;
  readonly sink: EventSink;
}

/**
 * Fan-out of per-user events to open SSE streams, with a replay buffer for `Last-Event-ID`.
 *
 * Event ids are `<boot>.<seq>`: `boot` is random per gateway start, so an id from before a
 * restart is recognised and answered with a resync rather than silently skipped.
 */
export class EventHub {
  private readonly bootId = randomBytes(4).toString('hex');
  private readonly buffer: Buffered[] = [];
  /** Open streams by user, so a publish touches only that user's streams. */
  private readonly byUser = new Map<string, Set<Subscriber>>();
  private seq = 0;

  constructor(private readonly bufferSize = 1000) {}

  /** Sends `event` to the user's open streams (only those of `jkt` when given) and buffers it. */
  publish(userId: string, event: ClientEvent, jkt?: string): string {
    this.seq += 1;
    const entry: Buffered = { seq: this.seq, id: `${this.bootId}.${this.seq}`, userId, jkt, event };
    this.buffer.push(entry);
    if (this.buffer.length > this.bufferSize) this.buffer.shift();
    const streams = this.byUser.get(userId);
    if (streams) {
      for (const subscriber of [...streams]) {
        if (matches(entry, subscriber)) this.deliver(subscriber, entry);
      }
    }
    return entry.id;
  }

  /** Streams open for a user (all devices). */
  openStreams(userId: string): number {
    return this.byUser.get(userId)?.size ?? 0;
  }

  /** Every user with an open stream, as of now (a copy: streams may open and close while it is worked through). */
  subscribedUsers(): string[] {
    return [...this.byUser.keys()];
  }

  /** The device keys (`jkt`) of a user's open streams. */
  devicesOf(userId: string): ReadonlySet<string> {
    const streams = this.byUser.get(userId);
    return new Set(streams ? [...streams].map((subscriber) => subscriber.jkt) : []);
  }

  /** Registers a stream and replays what it missed since `lastEventId`. */
  subscribe(userId: string, jkt: string, sink: EventSink, lastEventId?: string): Subscribed {
    const subscriber: Subscriber = { userId, jkt, sink };
    let needsResync = false;
    let replayed = 0;
    if (lastEventId !== undefined && lastEventId !== '') {
      const [boot, seqText] = lastEventId.split('.');
      const lastSeq = Number(seqText);
      const oldest = this.buffer[0]?.seq ?? this.seq + 1;
      if (boot !== this.bootId || !Number.isInteger(lastSeq) || lastSeq > this.seq || lastSeq < oldest - 1) {
        needsResync = true;
      } else {
        for (const entry of this.buffer) {
          if (entry.seq > lastSeq && matches(entry, subscriber)) {
            this.deliver(subscriber, entry);
            replayed++;
          }
        }
      }
    }
    let streams = this.byUser.get(userId);
    if (!streams) {
      streams = new Set();
      this.byUser.set(userId, streams);
    }
    streams.add(subscriber);
    return { dispose: () => this.remove(subscriber), needsResync, replayed };
  }

  private remove(subscriber: Subscriber): void {
    const streams = this.byUser.get(subscriber.userId);
    if (!streams) return;
    streams.delete(subscriber);
    if (streams.size === 0) this.byUser.delete(subscriber.userId);
  }

  private deliver(subscriber: Subscriber, entry: Buffered): void {
    subscriber.sink.write(
      formatSseEvent({ id: entry.id, event: entry.event.type, data: JSON.stringify(entry.event.data) }),
    );
    if (entry.event.type === CLIENT_EVENT.sessionRevoked) {
      this.remove(subscriber);
      subscriber.sink.close();
    }
  }
}

function matches(entry: Buffered, subscriber: Subscriber): boolean {
  return entry.userId === subscriber.userId && (entry.jkt === undefined || entry.jkt === subscriber.jkt);
}
