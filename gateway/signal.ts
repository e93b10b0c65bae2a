/** A subscription that can be ended. */
export interface Subscription {
  dispose(): void;
}

/**
 * A typed change notification for gateway services (policy reloads, catalog reloads).
 *
 * Listeners run synchronously in subscription order; one that throws is reported through
 * `onListenerError` and does not stop the others.
 */
export class Signal<T> {
  private readonly listeners = new Set<(value: T) => void>();

  constructor(private readonly onListenerError: (error: unknown) => void = () => {}) {}

  /** Subscribes `listener`; dispose the result to unsubscribe. */
  subscribe(listener: (value: T) => void): Subscription {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /** Calls every current listener with `value`. */
  fire(value: T): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(value);
      } catch (error) {
        this.onListenerError(error);
      }
    }
  }
}
