/**
 * The last lines the app logged, kept in memory for the diagnostics bundle (both shells).
 */
export class LogRing {
  private readonly lines: string[] = [];

  constructor(
    private readonly capacity = 300,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records one line (with the error's message and stack when there is one). */
  add(level: 'info' | 'warn' | 'error', message: string, error?: unknown): void {
    const detail =
      error === undefined
        ? ''
        : error instanceof Error
          ? ` ${error.message}${error.stack ? `\n${error.stack}` : ''}`
          : ` ${String(error)}`;
    this.lines.push(`${new Date(this.now()).toISOString()} [${level}] ${message}${detail}`.slice(0, 4000));
    if (this.lines.length > this.capacity) this.lines.splice(0, this.lines.length - this.capacity);
  }

  /** The kept lines, oldest first. */
  recent(): readonly string[] {
    return [...this.lines];
  }
}
