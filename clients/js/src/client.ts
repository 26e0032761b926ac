/**
 * The Turret client for Node.js: `track()` queues and returns; batches go to `POST /track/batch` from
 * the event loop, at most `maxInFlight` at once.
 *
 * The same rules as the Python client (turret_sdk):
 * - `track()` never waits and never throws for a delivery problem; it stamps the event with a client-side
 *   `event_id` and the time, and queues it (bounded: beyond `maxQueueSize` new events are dropped, counted
 *   and warned about).
 * - A batch that got no answer, a 5xx or a 429 is sent again with the same event ids (stored once):
 *   exponential backoff with full jitter, or the server's `Retry-After`. Any other 4xx is the event's own
 *   fault: reported, never sent again. Events refused for the quota inside a 200 wait for the reset.
 * - After `breakerThreshold` consecutive failures the circuit breaker opens for `breakerCooldown` seconds;
 *   then one trial request decides.
 */

import { randomBytes, randomUUID } from "node:crypto";

import { backoffDelay, CircuitBreaker, CircuitOpenError, parseRetryAfter, RETRYABLE_STATUSES } from "./retry.js";
import type { BreakerState } from "./retry.js";

export const VERSION = "0.1.0";
const BATCH_PATH = "/track/batch";
const RATE_LIMITED = "RATE_LIMIT_EXCEEDED";
const DROP_WARNING_INTERVAL_MS = 10_000;
// setTimeout's longest delay; a quota's Retry-After (the end of the month) is waited out in such steps.
const MAX_TIMER_MS = 2 ** 31 - 1;

export type MetadataValue = string | number | boolean | null;
export type Metadata = Record<string, MetadataValue>;

export interface TrackOptions {
  sessionId?: string;
  userId?: string;
  eventId?: string;
  /** Defaults to now. A Date, an ISO 8601 string or epoch milliseconds. */
  timestamp?: Date | string | number;
}

/** An event the server stored, with the ids it stored it under (generated ones included). */
export interface TrackResult {
  eventId: string;
  sessionId: string;
  userId: string;
}

/** An event the server refused for good; it is never sent again. */
export interface Rejection {
  eventId: string;
  status: number | null;
  code: string;
  error: string;
}

export interface ClientStats {
  delivered: number;
  rejected: number;
  dropped: number;
  retries: number;
  requests: number;
  queued: number;
  breaker: BreakerState;
  breakerOpened: number;
}

export interface Logger {
  warn(message: string): void;
  error(message: string): void;
}

/** Settings; times are in seconds, as in the Python client. */
export interface ClientOptions {
  host?: string;
  batchSize?: number;
  flushInterval?: number;
  maxQueueSize?: number;
  timeout?: number;
  backoffBase?: number;
  backoffMax?: number;
  breakerThreshold?: number;
  breakerCooldown?: number;
  maxBatchBytes?: number;
  maxInFlight?: number;
  sync?: boolean;
  sendRetries?: number;
  shutdownTimeout?: number;
  onDelivered?: (results: TrackResult[]) => void;
  onRejected?: (rejections: Rejection[]) => void;
  logger?: Logger;
}

/** A synchronous send failed: the server refused the event, or it could not be delivered in time. */
export class TurretError extends Error {
  override name = "TurretError";
  constructor(message: string, readonly status: number | null = null, readonly code: string | null = null) {
    super(message);
  }
}

interface WireEvent {
  name: string;
  metadata: Metadata;
  event_id: string;
  timestamp: string;
  session_id?: string;
  user_id?: string;
}

interface Outcome {
  delivered: TrackResult[];
  rejected: Rejection[];
  lastError: string;
  lastStatus: number | null;
}

interface HttpAnswer {
  status: number;
  headers: Headers;
  body: unknown;
}

class TransportError extends Error {}

const live = new Set<Client>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled || typeof process === "undefined" || typeof process.on !== "function") return;
  exitHookInstalled = true;
  // The event loop is empty: deliver what is queued (with a timer that keeps the process up to
  // shutdownTimeout seconds), then let it exit.
  process.on("beforeExit", () => {
    for (const client of live) client.exitFlush();
  });
}

function timestampText(value: Date | string | number | undefined): string {
  if (value === undefined) return new Date().toISOString();
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "number") return new Date(value).toISOString();
  return value;
}

function errorText(answer: HttpAnswer): string {
  const body = answer.body as { error?: unknown; message?: unknown } | null;
  if (body && typeof body.error === "string") return body.error;
  if (body && typeof body.message === "string") return body.message;
  return `HTTP ${answer.status}`;
}

function resetIn(headers: Headers): number | undefined {
  const retryAfter = parseRetryAfter(headers.get("retry-after"));
  if (retryAfter !== undefined) return retryAfter;
  const reset = headers.get("x-ratelimit-reset");
  if (reset === null || !/^\d+$/.test(reset)) return undefined;
  return Math.max(1, Number(reset) - Date.now() / 1000);
}

function positive(name: string, value: number, integer = false): number {
  if (!(value > 0) || (integer && !Number.isInteger(value))) {
    throw new RangeError(`${name} must be a positive ${integer ? "integer" : "number"}, got ${value}`);
  }
  return value;
}

export class Client {
  readonly host: string;
  readonly batchSize: number;
  readonly flushInterval: number;
  readonly maxQueueSize: number;
  readonly timeout: number;
  readonly backoffBase: number;
  readonly backoffMax: number;
  readonly maxBatchBytes: number;
  readonly maxInFlight: number;
  readonly sync: boolean;
  readonly sendRetries: number;
  readonly shutdownTimeout: number;
  readonly breaker: CircuitBreaker;
  onDelivered?: (results: TrackResult[]) => void;
  onRejected?: (rejections: Rejection[]) => void;
  private readonly logger: Logger;
  private readonly url: string;
  private readonly idPrefix = "evt_" + randomBytes(10).toString("hex");
  private idCounter = 0;
  private queue: WireEvent[] = [];
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing = 0;
  private pumpScheduled = false;
  private idleWaiters: Array<() => void> = [];
  private sleeps = new Map<NodeJS.Timeout, () => void>();
  private pendingSends = new Set<Promise<unknown>>();
  private closed = false;
  private aborted = false;
  private exiting = false;
  private counters = { delivered: 0, rejected: 0, dropped: 0, retries: 0, requests: 0 };
  private lastDropWarning = -Infinity;

  /**
   * @param apiKey the project's API key (`turret projects create` prints it)
   * @param options host (default http://localhost:8000) and the delivery settings
   */
  constructor(
    private readonly apiKey: string,
    options: ClientOptions = {},
  ) {
    if (typeof apiKey !== "string" || !apiKey.trim()) throw new TypeError("apiKey is required: the project's API key");
    this.host = options.host ?? "http://localhost:8000";
    let parsed: URL;
    try {
      parsed = new URL(this.host);
    } catch {
      throw new RangeError(`host must be an http:// or https:// URL, got ${JSON.stringify(this.host)}`);
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      throw new RangeError(`host must be an http:// or https:// URL, got ${JSON.stringify(this.host)}`);
    }
    this.url = this.host.replace(/\/+$/, "") + BATCH_PATH;
    this.batchSize = positive("batchSize", options.batchSize ?? 100, true);
    this.flushInterval = positive("flushInterval", options.flushInterval ?? 0.5);
    this.maxQueueSize = positive("maxQueueSize", options.maxQueueSize ?? 10_000, true);
    this.timeout = positive("timeout", options.timeout ?? 10);
    this.backoffBase = options.backoffBase ?? 0.5;
    this.backoffMax = options.backoffMax ?? 30;
    this.maxBatchBytes = positive("maxBatchBytes", options.maxBatchBytes ?? 1_000_000, true);
    this.maxInFlight = positive("maxInFlight", options.maxInFlight ?? 2, true);
    this.sync = options.sync ?? false;
    this.sendRetries = options.sendRetries ?? 2;
    if (!Number.isInteger(this.sendRetries) || this.sendRetries < 0) {
      throw new RangeError(`sendRetries must be an integer >= 0, got ${this.sendRetries}`);
    }
    this.shutdownTimeout = options.shutdownTimeout ?? 5;
    this.breaker = new CircuitBreaker(options.breakerThreshold ?? 5, options.breakerCooldown ?? 30);
    this.onDelivered = options.onDelivered;
    this.onRejected = options.onRejected;
    this.logger = options.logger ?? console;
    live.add(this);
    installExitHook();
  }

  /** A fresh client-side event id: `evt_` + 20 random hex digits for this client + a 12-digit counter. */
  nextEventId(): string {
    this.idCounter += 1;
    return this.idPrefix + this.idCounter.toString(16).padStart(12, "0");
  }

  private wire(name: string, metadata: Metadata, options: TrackOptions): WireEvent {
    if (metadata === null || typeof metadata !== "object" || Array.isArray(metadata)) {
      throw new TypeError(`metadata must be an object, got ${metadata === null ? "null" : typeof metadata}`);
    }
    const event: WireEvent = {
      name,
      metadata: { ...metadata },
      event_id: options.eventId ?? this.nextEventId(),
      timestamp: timestampText(options.timestamp),
    };
    if (options.sessionId !== undefined && options.sessionId !== null) event.session_id = options.sessionId;
    if (options.userId !== undefined && options.userId !== null) event.user_id = options.userId;
    return event;
  }

  /**
   * Queue one event and return its `event_id` at once (with `sync`, its send starts now; `flush()` waits
   * for it). `metadata` is a flat object of strings, numbers, booleans and nulls with at least one
   * non-blank string. Delivery problems never throw here: see `stats()`.
   */
  track(name: string, metadata: Metadata, options: TrackOptions = {}): string {
    const event = this.wire(name, metadata, options);
    if (this.sync) {
      const sending = this.deliverOne(event).catch((error: Error) => {
        this.logger.warn(`turret: event ${event.event_id} not delivered: ${error.message}`);
        if (!(error instanceof TurretError && error.code !== null)) this.counters.dropped += 1; // refusals count as rejected
      });
      this.pendingSends.add(sending);
      void sending.finally(() => {
        this.pendingSends.delete(sending);
        this.checkIdle();
      });
      return event.event_id;
    }
    if (this.closed || this.queue.length >= this.maxQueueSize) {
      this.countDrop(1);
      return event.event_id;
    }
    this.queue.push(event);
    if (this.queue.length >= this.batchSize) this.pumpSoon();
    else this.schedule();
    return event.event_id;
  }

  /**
   * Send one event now; resolve with the ids it was stored under. Rejects with `TurretError` when refused
   * or not delivered after `sendRetries` retries, with `CircuitOpenError` while the breaker is open.
   */
  async send(name: string, metadata: Metadata, options: TrackOptions = {}): Promise<TrackResult> {
    return this.deliverOne(this.wire(name, metadata, options));
  }

  private async deliverOne(event: WireEvent): Promise<TrackResult> {
    const outcome = await this.deliver([event], true);
    if (outcome.delivered.length) return outcome.delivered[0]!;
    const rejection = outcome.rejected[0];
    if (rejection) {
      throw new TurretError(`event ${event.event_id} refused: ${rejection.error}`, rejection.status, rejection.code);
    }
    throw new TurretError(`event ${event.event_id} not delivered: ${outcome.lastError}`, outcome.lastStatus);
  }

  /** A helper that sends every event of one conversation under one `session_id` and `user_id`. */
  conversation(ids: { sessionId?: string; userId?: string } = {}): Conversation {
    return new Conversation(this, ids.sessionId, ids.userId);
  }

  /**
   * Wait until every event tracked so far is settled (stored, rejected or dropped); `false` if `timeout`
   * seconds passed first. The process stays up while a flush waits.
   */
  async flush(timeout?: number): Promise<boolean> {
    this.flushing += 1;
    for (const handle of this.sleeps.keys()) handle.ref();
    try {
      this.pump();
      const idle = new Promise<true>((resolve) => {
        if (this.isIdle()) resolve(true);
        else this.idleWaiters.push(() => resolve(true));
      });
      if (timeout === undefined) return await idle;
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), timeout * 1000);
      });
      try {
        return await Promise.race([idle, late]);
      } finally {
        clearTimeout(timer);
      }
    } finally {
      this.flushing -= 1;
      if (!this.flushing) for (const handle of this.sleeps.keys()) handle.unref();
    }
  }

  /**
   * Deliver what is queued (waiting at most `timeout` seconds), then stop: later `track()` calls drop.
   * Events still undelivered when the time is up are counted as dropped. `true` when all were settled.
   */
  async shutdown(timeout?: number): Promise<boolean> {
    if (this.closed) return this.isIdle();
    this.closed = true;
    const done = await this.flush(timeout);
    live.delete(this);
    if (this.timer) clearTimeout(this.timer);
    if (done) return true;
    this.abort();
    const left = this.queue.length;
    this.queue = [];
    if (left) this.countDrop(left);
    // The aborted deliveries count what they held as dropped as soon as their request (if any) ends.
    await this.flush(this.timeout + 1);
    return false;
  }

  /** The `beforeExit` hook: deliver what is queued, within `shutdownTimeout` seconds. */
  exitFlush(): void {
    if (this.exiting || this.isIdle()) return;
    this.exiting = true;
    void this.shutdown(this.shutdownTimeout);
  }

  /** Log through the client's logger (the conversation helper's warnings). */
  logWarning(message: string): void {
    this.logger.warn(message);
  }

  stats(): ClientStats {
    return {
      ...this.counters,
      queued: this.queue.length,
      breaker: this.breaker.state,
      breakerOpened: this.breaker.timesOpened,
    };
  }

  // ------------------------------------------------------------------------------------------ sending

  private isIdle(): boolean {
    return this.queue.length === 0 && this.inFlight === 0 && this.pendingSends.size === 0;
  }

  private checkIdle(): void {
    if (!this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  /** Send full batches on the next turn of the event loop: encoding and fetch never run inside track(). */
  private pumpSoon(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private schedule(): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pump(true);
    }, this.flushInterval * 1000);
    this.timer.unref();
  }

  /** Start batches while there is room in flight: full ones always, partial ones when due or flushing. */
  private pump(due = false): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      if (this.queue.length < this.batchSize && !due && !this.flushing && !this.closed) break;
      const batch = this.queue.splice(0, this.batchSize);
      this.inFlight += 1;
      void this.deliver(batch, false)
        .catch((error: Error) => this.logger.error(`turret: delivery failed: ${error.stack ?? error.message}`))
        .finally(() => {
          this.inFlight -= 1;
          this.pump();
          this.checkIdle();
        });
    }
    if (this.queue.length > 0) this.schedule();
    this.checkIdle();
  }

  private countDrop(n: number): void {
    this.counters.dropped += n;
    const now = Date.now();
    if (now - this.lastDropWarning >= DROP_WARNING_INTERVAL_MS) {
      this.lastDropWarning = now;
      const reason = this.closed ? "the client is shut down" : `the queue is full (${this.maxQueueSize} events)`;
      this.logger.warn(`turret: dropping events: ${reason}; ${this.counters.dropped} dropped so far`);
    }
  }

  private reject(rejections: Rejection[]): void {
    this.counters.rejected += rejections.length;
    for (const r of rejections.slice(0, 3)) {
      this.logger.warn(`turret: event ${r.eventId} rejected (${r.status} ${r.code}): ${r.error}`);
    }
    if (this.onRejected) this.callback(this.onRejected, rejections);
  }

  private callback<T>(fn: (value: T) => void, value: T): void {
    try {
      fn(value);
    } catch (error) {
      this.logger.error(`turret: callback failed: ${(error as Error).stack ?? error}`);
    }
  }

  /** Wait `seconds` (kept alive only while someone flushes); `false` when an abort cut it short. */
  private async sleep(seconds: number): Promise<boolean> {
    let left = seconds * 1000;
    do {
      const step = Math.min(left, MAX_TIMER_MS);
      if (!(await this.sleepStep(step))) return false;
      left -= step;
    } while (left > 0);
    return true;
  }

  private sleepStep(ms: number): Promise<boolean> {
    if (this.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const handle = setTimeout(() => {
        this.sleeps.delete(handle);
        resolve(true);
      }, ms);
      if (!this.flushing) handle.unref();
      this.sleeps.set(handle, () => resolve(false));
    });
  }

  private abort(): void {
    this.aborted = true;
    for (const [handle, cancel] of this.sleeps) {
      clearTimeout(handle);
      cancel();
    }
    this.sleeps.clear();
  }

  private async post(body: string): Promise<HttpAnswer> {
    let response: Response;
    let text: string;
    try {
      response = await fetch(this.url, {
        method: "POST",
        headers: {
          "X-API-Key": this.apiKey,
          "Content-Type": "application/json",
          Accept: "application/json",
          "User-Agent": `turret-sdk-js/${VERSION}`,
        },
        body,
        signal: AbortSignal.timeout(this.timeout * 1000),
      });
      text = await response.text();
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause;
      throw new TransportError(`${(error as Error).name}: ${(error as Error).message}${cause?.code ? ` (${cause.code})` : ""}`);
    }
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = null;
    }
    return { status: response.status, headers: response.headers, body: parsed };
  }

  /** Send `batch` until every event is stored or rejected (sync: until `sendRetries` run out). */
  private async deliver(batch: WireEvent[], sync: boolean): Promise<Outcome> {
    const outcome: Outcome = { delivered: [], rejected: [], lastError: "", lastStatus: null };
    let pending = batch;
    let failures = 0;
    while (pending.length) {
      if (!this.breaker.allow()) {
        if (sync) {
          throw new CircuitOpenError(
            `turret: circuit breaker open after ${this.breaker.threshold} consecutive failures; ` +
              `retrying in ${this.breaker.waitTime().toFixed(1)} s`,
          );
        }
        if (!(await this.sleep(Math.max(0.05, this.breaker.waitTime())))) break;
        continue;
      }
      const body = JSON.stringify({ events: pending });
      if (Buffer.byteLength(body) > this.maxBatchBytes && pending.length > 1) {
        const half = Math.floor(pending.length / 2);
        for (const part of [pending.slice(0, half), pending.slice(half)]) {
          const sub = await this.deliver(part, sync);
          outcome.delivered.push(...sub.delivered);
          outcome.rejected.push(...sub.rejected);
        }
        return outcome;
      }
      this.counters.requests += 1;
      let delay: number | undefined;
      let answer: HttpAnswer | undefined;
      try {
        answer = await this.post(body);
      } catch (error) {
        this.breaker.recordFailure();
        outcome.lastError = (error as Error).message;
        outcome.lastStatus = null;
        failures += 1;
      }
      if (answer) {
        const status = answer.status;
        const results = (answer.body as { results?: unknown } | null)?.results;
        if (status === 200 && Array.isArray(results) && results.length === pending.length) {
          this.breaker.recordSuccess();
          failures = 0;
          pending = this.settle(pending, results, outcome);
          if (!pending.length) break;
          // Refused for the quota within an accepted batch: wait for the period to reset.
          outcome.lastError = "the project's event limit is reached";
          outcome.lastStatus = 429;
          delay = resetIn(answer.headers);
          failures += 1;
        } else if (status === 413 && pending.length > 1) {
          this.breaker.recordSuccess();
          const half = Math.floor(pending.length / 2);
          for (const part of [pending.slice(0, half), pending.slice(half)]) {
            const sub = await this.deliver(part, sync);
            outcome.delivered.push(...sub.delivered);
            outcome.rejected.push(...sub.rejected);
          }
          return outcome;
        } else if (RETRYABLE_STATUSES.has(status)) {
          if (status === 429) this.breaker.recordSuccess(); // the server is well; the quota is used up
          else this.breaker.recordFailure();
          delay = parseRetryAfter(answer.headers.get("retry-after"));
          outcome.lastError = errorText(answer);
          outcome.lastStatus = status;
          failures += 1;
        } else {
          this.breaker.recordSuccess();
          const code = ((answer.body as { code?: unknown } | null)?.code as string | undefined) || `HTTP_${status}`;
          const rejections = pending.map((e) => ({ eventId: e.event_id, status, code, error: errorText(answer!) }));
          outcome.rejected.push(...rejections);
          this.reject(rejections);
          if (status === 401) this.logger.error("turret: the API key was refused (401); events are not being stored");
          break;
        }
      }
      if (sync && failures > this.sendRetries) break;
      if (delay === undefined) delay = backoffDelay(failures, this.backoffBase, this.backoffMax);
      if (sync && delay > this.backoffMax) break; // a serverless call must not wait out a quota period
      this.counters.retries += 1;
      if (!(await this.sleep(delay))) break;
    }
    if (pending.length && !sync && this.aborted) this.countDrop(pending.length);
    return outcome;
  }

  /** Record a 200 answer's per-event results; return the events to send again (quota refusals). */
  private settle(pending: WireEvent[], results: unknown[], outcome: Outcome): WireEvent[] {
    const again: WireEvent[] = [];
    const delivered: TrackResult[] = [];
    const rejected: Rejection[] = [];
    pending.forEach((event, i) => {
      const result = results[i] as
        | { success?: boolean; event_id?: string; session_id?: string; user_id?: string; code?: string; error?: string }
        | null;
      if (!result || typeof result !== "object") {
        rejected.push({ eventId: event.event_id, status: 200, code: "INVALID_RESPONSE", error: String(result) });
      } else if (result.success) {
        delivered.push({ eventId: result.event_id!, sessionId: result.session_id!, userId: result.user_id! });
      } else if (result.code === RATE_LIMITED) {
        again.push(event);
      } else {
        rejected.push({ eventId: event.event_id, status: 400, code: String(result.code), error: String(result.error) });
      }
    });
    if (delivered.length) {
      this.counters.delivered += delivered.length;
      outcome.delivered.push(...delivered);
      if (this.onDelivered) this.callback(this.onDelivered, delivered);
    }
    if (rejected.length) {
      outcome.rejected.push(...rejected);
      this.reject(rejected);
    }
    return again;
  }
}

/**
 * Keeps the ids of a conversation so that every message joins the same journey. Without ids, the first
 * event is sent at once and the `session_id`/`user_id` the server stored it under are kept for the rest;
 * if that send cannot be delivered, the missing ids are generated here (UUID4) and the event is queued.
 */
export class Conversation {
  private first: Promise<unknown> | undefined;

  constructor(
    readonly client: Client,
    public sessionId?: string,
    public userId?: string,
  ) {}

  /** Track one event of this conversation; resolves with its `event_id`. */
  async track(name: string, metadata: Metadata, options: { eventId?: string; timestamp?: Date | string | number } = {}): Promise<string> {
    if (this.first) await this.first.catch(() => undefined);
    if (this.sessionId === undefined || this.userId === undefined) {
      const attempt = this.sendFirst(name, metadata, options);
      this.first = attempt;
      return attempt;
    }
    return this.client.track(name, metadata, { ...options, sessionId: this.sessionId, userId: this.userId });
  }

  private async sendFirst(
    name: string,
    metadata: Metadata,
    options: { eventId?: string; timestamp?: Date | string | number },
  ): Promise<string> {
    // The id is fixed before the first try, so a send that landed unanswered and is queued again is
    // stored once.
    const eventId = options.eventId ?? this.client.nextEventId();
    const ids = { sessionId: this.sessionId, userId: this.userId };
    try {
      const result = await this.client.send(name, metadata, { ...options, ...ids, eventId });
      this.sessionId = result.sessionId;
      this.userId = result.userId;
      return result.eventId;
    } catch (error) {
      if (!(error instanceof TurretError) && !(error instanceof CircuitOpenError)) throw error;
      const status = error instanceof TurretError ? error.status : null;
      if (status !== null && status >= 400 && status < 500 && status !== 429) {
        this.client.logWarning(`turret: event ${eventId} rejected: ${error.message}`);
        return eventId; // refused for good; the next event tries again for the ids
      }
      this.sessionId ??= randomUUID();
      this.userId ??= randomUUID();
      return this.client.track(name, metadata, { ...options, eventId, sessionId: this.sessionId, userId: this.userId });
    }
  }
}
