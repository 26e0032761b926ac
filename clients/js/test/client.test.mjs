// The Node client against a real `turret serve`: batching, ids, rejections, queue bounds, conversations,
// sync sends and the breaker. Every test reads back what the server stored (the landing store).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { CircuitOpenError, Client, TurretError } from "../dist/index.js";
import { freePort, Turret } from "./turret-server.mjs";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const quiet = () => {
  const lines = [];
  return { lines, warn: (m) => lines.push(m), error: (m) => lines.push(m) };
};
const unreachable = async () => `http://127.0.0.1:${await freePort()}`;

let turret;
before(async () => {
  turret = await (await Turret.create()).start();
});
after(async () => {
  await turret.kill();
});

test("track returns at once and the batches land with the client's ids", async () => {
  const delivered = [];
  const client = new Client(turret.key, { host: turret.url, batchSize: 50, onDelivered: (r) => delivered.push(...r) });
  const when = new Date("2026-01-02T03:04:05Z");
  const ids = [];
  for (let i = 0; i < 120; i++) {
    ids.push(client.track("user_message", { prompt: `question ${i}`, n: i }, { sessionId: "conv-1", userId: "u-1", timestamp: when }));
  }
  assert.ok(await client.flush(30));
  const stats = client.stats();
  assert.equal(stats.delivered, 120);
  assert.equal(stats.rejected + stats.dropped, 0);
  assert.equal(stats.requests, 3, "50 + 50 + 20: batched, not one request per event");
  assert.equal(new Set(ids).size, 120);
  assert.ok(ids.every((id) => /^evt_[0-9a-f]{32}$/.test(id)));
  assert.deepEqual(new Set(delivered.map((r) => r.eventId)), new Set(ids));
  const landed = turret.landed();
  ids.forEach((id, i) => {
    const { count, record } = landed[id];
    assert.equal(count, 1);
    assert.equal(record.session_id, "conv-1");
    assert.equal(record.user_id, "u-1");
    assert.deepEqual(record.metadata, { prompt: `question ${i}`, n: i });
    assert.ok(record.timestamp.startsWith("2026-01-02T03:04:05"));
  });
  await client.shutdown();
});

test("an event waits at most the flush interval, and is stamped when tracked", async () => {
  const client = new Client(turret.key, { host: turret.url, flushInterval: 0.2 });
  const before = Date.now();
  const id = client.track("user_message", { prompt: "alone in its batch" });
  const afterTrack = Date.now();
  for (let i = 0; i < 500 && client.stats().delivered === 0; i++) await sleep(20);
  assert.equal(client.stats().delivered, 1, "the interval sent it without flush()");
  const stamped = Date.parse(turret.landed()[id].record.timestamp);
  assert.ok(stamped >= before && stamped <= afterTrack);
  await client.shutdown();
});

test("a refused event is reported once and never sent again", async () => {
  const rejected = [];
  const logger = quiet();
  const client = new Client(turret.key, { host: turret.url, logger, onRejected: (r) => rejected.push(...r) });
  const good = client.track("user_message", { prompt: "fine" });
  const nested = client.track("user_message", { prompt: "fine", extra: { nested: 1 } });
  const noText = client.track("user_message", { count: 3 });
  assert.ok(await client.flush(30));
  await sleep(1000); // long enough for any retry to have happened
  const stats = client.stats();
  assert.deepEqual([stats.delivered, stats.rejected, stats.requests, stats.retries], [1, 2, 1, 0]);
  assert.deepEqual(Object.fromEntries(rejected.map((r) => [r.eventId, r.code])), {
    [nested]: "INVALID_REQUEST",
    [noText]: "MISSING_REQUIRED_FIELD",
  });
  assert.ok(logger.lines.some((l) => l.includes("metadata.extra")));
  const landed = turret.landed();
  assert.equal(landed[good].count, 1);
  assert.ok(!landed[nested] && !landed[noText]);
  await client.shutdown();
});

test("a bad API key is not retried", async () => {
  const logger = quiet();
  const client = new Client("trt_not-a-key", { host: turret.url, logger });
  client.track("user_message", { prompt: "hello" });
  assert.ok(await client.flush(30));
  const stats = client.stats();
  assert.deepEqual([stats.delivered, stats.rejected, stats.requests], [0, 1, 1]);
  assert.ok(logger.lines.some((l) => l.includes("API key was refused")));
  await client.shutdown();
});

test("a full queue drops new events with a counter and a warning", async () => {
  const logger = quiet();
  const client = new Client("trt_x", { host: await unreachable(), maxQueueSize: 5, flushInterval: 60, logger });
  for (let i = 0; i < 20; i++) client.track("user_message", { prompt: `m${i}` });
  assert.equal(client.stats().dropped, 15);
  assert.equal(client.stats().queued, 5);
  assert.ok(logger.lines.some((l) => l.includes("queue is full (5 events)")));
  assert.equal(await client.shutdown(0.2), false, "could not deliver: the rest counts as dropped");
  assert.equal(client.stats().dropped, 20);
  client.track("user_message", { prompt: "after shutdown" });
  assert.equal(client.stats().dropped, 21);
});

test("a conversation keeps the ids the server generated", async () => {
  const client = new Client(turret.key, { host: turret.url });
  const chat = client.conversation();
  const first = await chat.track("user_message", { prompt: "Can I export my data?" });
  assert.ok(chat.sessionId && chat.userId, "returned by the server for the first event");
  const rest = [];
  for (let i = 0; i < 3; i++) rest.push(await chat.track("user_message", { prompt: `follow-up ${i}` }));
  assert.ok(await client.flush(30));
  const landed = turret.landed();
  assert.deepEqual(new Set([first, ...rest].map((id) => landed[id].record.session_id)), new Set([chat.sessionId]));
  assert.deepEqual(new Set([first, ...rest].map((id) => landed[id].record.user_id)), new Set([chat.userId]));
  const known = client.conversation({ sessionId: "conv-9", userId: "user-9" });
  const mine = await known.track("user_message", { prompt: "mine" });
  assert.ok(await client.flush(30));
  assert.equal(turret.landed()[mine].record.session_id, "conv-9");
  await client.shutdown();
});

test("a conversation falls back to local ids when the server is down", async () => {
  const client = new Client("trt_x", { host: await unreachable(), sendRetries: 0, flushInterval: 60, logger: quiet() });
  const chat = client.conversation({ userId: "user-1" });
  await chat.track("user_message", { prompt: "hello?" });
  assert.equal(chat.userId, "user-1");
  assert.match(chat.sessionId, /^[0-9a-f-]{36}$/);
  assert.equal(client.stats().queued, 1);
  await client.shutdown(0);
});

test("send() and sync mode deliver before resolving; a 400 is not retried", async () => {
  const client = new Client(turret.key, { host: turret.url, sync: true });
  const result = await client.send("search", { query: "red shoes" }, { userId: "shopper" });
  assert.equal(result.userId, "shopper");
  assert.ok(result.sessionId, "generated by the server");
  assert.equal(turret.landed()[result.eventId].count, 1);
  const id = client.track("search", { query: "blue shoes" });
  assert.ok(await client.flush(30));
  assert.equal(turret.landed()[id].count, 1);
  await assert.rejects(client.send("search", { query: "x", bad: [1] }), (error) => {
    assert.ok(error instanceof TurretError);
    assert.equal(error.status, 400);
    assert.equal(error.code, "INVALID_REQUEST");
    return true;
  });
  assert.equal(client.stats().requests, 3);
  await client.shutdown();
});

test("sync sends retry, then fail fast while the breaker is open", async () => {
  const client = new Client("trt_x", {
    host: await unreachable(), sync: true, sendRetries: 1, backoffBase: 0.01, breakerThreshold: 4,
    breakerCooldown: 60, logger: quiet(),
  });
  for (let i = 0; i < 2; i++) await assert.rejects(client.send("search", { query: "down" }), /not delivered/);
  assert.equal(client.stats().requests, 4);
  assert.equal(client.stats().breaker, "open");
  await assert.rejects(client.send("search", { query: "down" }), CircuitOpenError);
  assert.equal(client.stats().requests, 4, "refused without a request");
  client.track("search", { query: "never throws" });
  assert.ok(await client.flush(5));
  assert.equal(client.stats().requests, 4);
  assert.equal(client.stats().dropped, 1, "counted, not silent");
  await client.shutdown(0);
});

test("the breaker opens while the server is down and a trial closes it", async () => {
  const down = await Turret.create();
  const client = new Client(down.key, {
    host: down.url, backoffBase: 0.01, backoffMax: 0.05, breakerThreshold: 3, breakerCooldown: 1.5,
    flushInterval: 0.05, logger: quiet(),
  });
  const ids = [];
  for (let i = 0; i < 10; i++) ids.push(client.track("user_message", { prompt: `waiting ${i}` }));
  const flushed = client.flush(120); // keeps the test's process up while the client waits
  for (let i = 0; i < 500 && client.stats().breaker !== "open"; i++) await sleep(10);
  const opened = client.stats();
  assert.equal(opened.breaker, "open");
  assert.equal(opened.breakerOpened, 1);
  await sleep(500);
  assert.equal(client.stats().requests, opened.requests, "nothing sent while open");
  await down.start();
  try {
    assert.ok(await flushed);
    assert.equal(client.stats().breaker, "closed");
    assert.equal(client.stats().delivered, 10);
    const landed = down.landed();
    assert.ok(ids.every((id) => landed[id]?.count === 1));
  } finally {
    await client.shutdown();
    await down.kill();
  }
});

test("settings are checked when the client is made", () => {
  for (const options of [{ batchSize: 0 }, { flushInterval: 0 }, { maxQueueSize: 0 }, { maxInFlight: 0 }, { host: "ftp://x" }]) {
    assert.throws(() => new Client("trt_x", options), RangeError, JSON.stringify(options));
  }
  assert.throws(() => new Client(""), TypeError);
  const client = new Client("trt_x");
  assert.throws(() => client.track("user_message", ["not", "an", "object"]), TypeError);
  assert.throws(() => client.track("user_message", null), TypeError);
});
