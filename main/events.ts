/** A subscription that can be ended. */
export interface Disposable {
  dispose(): void;
}

/**
 * A typed event source for services whose state changes (`onDidChange` in VS Code's shape).
 */
export class Emitter<T> {
  private readonly listeners = new Set<(value: T) => void>();

  /** Subscribes `listener`; dispose the result to unsubscribe. */
  readonly event = (listener: (value: T) => void): Disposable => {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  };

  fire(value: T): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(value);
      } catch (error) {
        console.error('Event listener failed', error);
      }
    }
  }

  dispose(): void {
    this.listeners.clear();
  }
}
