/** Turret's Node.js client: `new Client(apiKey, { host }).track(name, metadata)` sends events in the background. */
export { Client, Conversation, TurretError, VERSION } from "./client.js";
export type {
  ClientOptions,
  ClientStats,
  Logger,
  Metadata,
  MetadataValue,
  Rejection,
  TrackOptions,
  TrackResult,
} from "./client.js";
export { backoffDelay, CircuitBreaker, CircuitOpenError, parseRetryAfter, RETRYABLE_STATUSES } from "./retry.js";
export type { BreakerState } from "./retry.js";
