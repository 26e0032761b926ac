/**
 * When to try again: exponential backoff with full jitter, `Retry-After`, and a circuit breaker.
 * Pure logic over numbers and a clock, so the delivery loop stays readable and these rules are tested
 * without a network.
 */

/** 429 and 503 carry Retry-After; 500, 502 and 504 fail on the server's side. Other 4xx are never retried. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 500, 502, 503, 504]);

/**
 * Seconds to wait before retry `attempt` (1, 2, ...): uniform in [0, min(cap, base * 2^(attempt-1))].
 * "Full jitter": clients that failed together do not retry together.
 */
export function backoffDelay(attempt: number, base: number, cap: number, rng: () => number = Math.random): number {
  if (!Number.isInteger(attempt) || attempt < 1) {
    throw new RangeError(`attempt must be an integer >= 1, got ${attempt}`);
  }
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt - 1, 62));
  return ceiling * rng();
}

/** `Retry-After` in seconds (delta-seconds or an HTTP date), or `undefined` when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text);
  const when = Date.parse(text);
  if (Number.isNaN(when)) return undefined;
  return Math.max(0, (when - now) / 1000);
}

/** A synchronous send was refused without trying: the circuit breaker is open. */
export class CircuitOpenError extends Error {
  override name = "CircuitOpenError";
}

export type BreakerState = "closed" | "open" | "half-open";

/**
 * Closed; open after `threshold` consecutive failures; half-open `cooldown` seconds later, when one trial
 * request decides: its success closes the breaker, its failure opens it for another cooldown.
 */
export class CircuitBreaker {
  timesOpened = 0;
  private failures = 0;
  private openedAt: number | undefined;
  private trialInFlight = false;

  constructor(
    readonly threshold = 5,
    readonly cooldown = 30,
    private readonly clock: () => number = () => performance.now() / 1000,
  ) {
    if (!Number.isInteger(threshold) || threshold < 1) throw new RangeError(`threshold must be >= 1, got ${threshold}`);
    if (!(cooldown >= 0)) throw new RangeError(`cooldown must be >= 0, got ${cooldown}`);
  }

  get state(): BreakerState {
    if (this.openedAt === undefined) return "closed";
    return this.clock() - this.openedAt >= this.cooldown ? "half-open" : "open";
  }

  /** Seconds until a request may be tried (0 when closed or half-open). */
  waitTime(): number {
    if (this.openedAt === undefined) return 0;
    return Math.max(0, this.openedAt + this.cooldown - this.clock());
  }

  /** May a request be sent now? In half-open, only one trial at a time. */
  allow(): boolean {
    const state = this.state;
    if (state === "closed") return true;
    if (state === "open" || this.trialInFlight) return false;
    this.trialInFlight = true;
    return true;
  }

  recordSuccess(): void {
    this.failures = 0;
    this.openedAt = undefined;
    this.trialInFlight = false;
  }

  recordFailure(): void {
    this.failures += 1;
    const wasTrial = this.trialInFlight;
    this.trialInFlight = false;
    if (wasTrial || this.failures >= this.threshold) {
      if (this.openedAt === undefined || wasTrial) this.timesOpened += 1;
      this.openedAt = this.clock();
    }
  }
}
