import { Emitter } from '../events';

/** The services that hold one person's data while they are signed in. */
export interface PersonalServices {
  /** Writes what is pending and lets go of the person's data (keys, decrypted conversations). */
  close(): Promise<void>;
}

/**
 * Holds the services of the person signed in now, and only theirs.
 *
 * {@link ActivePerson.switchTo} takes effect at once: from that moment every call reaches the new
 * person's services (or none), while the previous person's are closed in the background. Their
 * pending writes still land in their own profile; nothing of theirs is handed out any more.
 */
export class ActivePerson<S extends PersonalServices> {
  private active: { readonly personId: string; readonly ready: Promise<S> } | undefined;
  private closing: Promise<void> = Promise.resolve();
  private readonly switched = new Emitter<string | undefined>();
  /** Fires with the new person's id (undefined: nobody) right after a switch. */
  readonly onDidSwitch = this.switched.event;

  constructor(
    private readonly open: (personId: string) => Promise<S>,
    private readonly log: (message: string, error?: unknown) => void,
  ) {}

  /** Who is active now. */
  get personId(): string | undefined {
    return this.active?.personId;
  }

  /** True while `personId` is the active person (a service checks this before it tells the page anything). */
  isActive(personId: string): boolean {
    return this.active?.personId === personId;
  }

  /** Makes `personId` (or nobody) the active person; a no-op when they already are. */
  switchTo(personId: string | undefined): void {
    if (this.active?.personId === personId) return;
    const previous = this.active;
    if (personId === undefined) {
      this.active = undefined;
    } else {
      const after = this.closing;
      const ready = after.then(() => this.open(personId));
      ready.catch((error: unknown) => this.log('This person’s data could not be opened', error));
      this.active = { personId, ready };
    }
    if (previous) {
      this.closing = this.closing
        .then(() => previous.ready)
        .then((services) => services.close())
        .catch((error: unknown) => this.log('The previous person’s data could not be closed cleanly', error));
    }
    this.switched.fire(personId);
  }

  /** The active person's services, once open; undefined when nobody is signed in. */
  async current(): Promise<S | undefined> {
    return this.active?.ready;
  }

  /** Resolves when everything of people no longer active has been written and let go. */
  settled(): Promise<void> {
    return this.closing;
  }

  /** Closes the active person's services too. */
  async dispose(): Promise<void> {
    this.switchTo(undefined);
    await this.closing;
    this.switched.dispose();
  }
}
