// Backoff, Retry-After and the circuit breaker, over numbers and a hand-driven clock.
import assert from "node:assert/strict";
import { test } from "node:test";

import { backoffDelay, CircuitBreaker, parseRetryAfter, RETRYABLE_STATUSES } from "../dist/index.js";

test("backoff doubles up to the cap with full jitter", () => {
  for (const [attempt, ceiling] of [[1, 0.5], [2, 1], [3, 2], [6, 16], [7, 30], [200, 30]]) {
    assert.equal(backoffDelay(attempt, 0.5, 30, () => 1), ceiling);
    assert.equal(backoffDelay(attempt, 0.5, 30, () => 0), 0);
    assert.equal(backoffDelay(attempt, 0.5, 30, () => 0.25), ceiling * 0.25);
  }
  const spread = new Set(Array.from({ length: 50 }, () => backoffDelay(4, 0.5, 30)));
  assert.ok(spread.size > 40);
  assert.throws(() => backoffDelay(0, 0.5, 30), RangeError);
});

test("Retry-After in seconds or as an HTTP date", () => {
  assert.equal(parseRetryAfter("120"), 120);
  assert.equal(parseRetryAfter(" 7 "), 7);
  assert.equal(parseRetryAfter(null), undefined);
  assert.equal(parseRetryAfter(""), undefined);
  assert.equal(parseRetryAfter("soon"), undefined);
  const when = new Date(1_000_090_000).toUTCString();
  assert.equal(parseRetryAfter(when, 1_000_000_000), 90);
  assert.equal(parseRetryAfter(when, 2_000_000_000), 0);
});

test("only server-side statuses are retried", () => {
  assert.deepEqual([...RETRYABLE_STATUSES].sort(), [429, 500, 502, 503, 504]);
  for (const status of [400, 401, 403, 404, 405, 413]) assert.ok(!RETRYABLE_STATUSES.has(status));
});

test("the breaker opens after N consecutive failures and half-opens after the cooldown", () => {
  let now = 100;
  const breaker = new CircuitBreaker(3, 10, () => now);
  for (let i = 0; i < 2; i++) {
    assert.ok(breaker.allow());
    breaker.recordFailure();
  }
  assert.equal(breaker.state, "closed");
  breaker.recordSuccess();
  for (let i = 0; i < 3; i++) {
    assert.ok(breaker.allow());
    breaker.recordFailure();
  }
  assert.equal(breaker.state, "open");
  assert.equal(breaker.timesOpened, 1);
  assert.ok(!breaker.allow());
  assert.equal(breaker.waitTime(), 10);
  now += 10;
  assert.equal(breaker.state, "half-open");
  assert.ok(breaker.allow());
  assert.ok(!breaker.allow(), "one trial at a time");
  breaker.recordFailure();
  assert.equal(breaker.state, "open");
  assert.equal(breaker.timesOpened, 2);
  now += 10;
  assert.ok(breaker.allow());
  breaker.recordSuccess();
  assert.equal(breaker.state, "closed");
  assert.throws(() => new CircuitBreaker(0, 1), RangeError);
  assert.throws(() => new CircuitBreaker(1, -1), RangeError);
});
