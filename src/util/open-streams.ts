// The requests that outlive a request/response exchange (watch streams, lease keepalives,
// election observers, v2 long polls): each registers how to end itself cleanly, so a graceful
// shutdown can end them all at once instead of waiting for them or cutting their connections.

export class OpenStreams {
  private readonly enders = new Set<() => void>();
  private ending = false;

  /**
   * Registers `end` (called at most once, at shutdown). Returns the function to call when the
   * stream ends by itself. Registering after shutdown began ends the stream at once.
   */
  add(end: () => void): () => void {
    if (this.ending) {
      queueMicrotask(end);
      return () => undefined;
    }
    this.enders.add(end);
    return () => void this.enders.delete(end);
  }

  /** Ends every registered stream; later registrations end at once. */
  endAll(): void {
    this.ending = true;
    for (const end of [...this.enders]) {
      this.enders.delete(end);
      end();
    }
  }
}
