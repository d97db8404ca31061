/**
 * The server's life: loading (health 503), ready (200), draining (503 again, in-flight requests
 * finishing), and the moment the grace period ends, when every generation still running is aborted.
 *
 * @module
 */

/** Where the server is in its life. */
export type LifecycleState = "loading" | "ready" | "draining";

/** Shared by the app and the serve command. */
export class Lifecycle {
  #state: LifecycleState;
  readonly #abort = new AbortController();
  #inFlight = 0;
  #idle: (() => void)[] = [];

  constructor(state: LifecycleState = "loading") {
    this.#state = state;
  }

  get state(): LifecycleState {
    return this.#state;
  }

  /** The model is loaded: health turns 200. */
  ready(): void {
    if (this.#state === "loading") this.#state = "ready";
  }

  /** Shutdown began: health turns 503 so load balancers stop sending. */
  drain(): void {
    this.#state = "draining";
  }

  /** Aborted when the grace period is over; every generation listens to it. */
  get shutdownSignal(): AbortSignal {
    return this.#abort.signal;
  }

  /** Ends every generation still running. */
  abortAll(reason = "server shutting down"): void {
    this.#abort.abort(new Error(reason));
  }

  /** Generations running now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Counts a generation until the returned function is called (idempotent). */
  begin(): () => void {
    this.#inFlight++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#inFlight--;
      if (this.#inFlight === 0) { for (const resolve of this.#idle.splice(0)) resolve(); }
    };
  }

  /** Resolves when no generation is running. */
  whenIdle(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }
}
