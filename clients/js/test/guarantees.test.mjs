// What the client promises when things go wrong, against a real `turret serve`: a SIGKILL of the whole
// server mid-stream, a project out of quota, a process that ends without flush().
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";

import { Client } from "../dist/index.js";
import { Turret } from "./turret-server.mjs";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const quiet = { warn: () => {}, error: () => {} };
const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../dist/index.js");

test("SIGKILL of the server mid-stream loses nothing acknowledged and stores nothing twice", async () => {
  const turret = await (await Turret.create()).start();
  const acknowledged = [];
  const client = new Client(turret.key, {
    host: turret.url, batchSize: 50, flushInterval: 0.05, maxQueueSize: 100_000, backoffBase: 0.02,
    backoffMax: 0.2, breakerThreshold: 5, breakerCooldown: 0.5, logger: quiet,
    onDelivered: (results) => acknowledged.push(...results.map((r) => r.eventId)),
  });
  const tracked = [];
  let running = true;
  const app = (async () => { // an app tracking steadily, unaware of the server's fate
    for (let i = 0; running; i++) {
      tracked.push(client.track("user_message", { prompt: `message ${i}` }, { sessionId: `s${i % 7}` }));
      if (i % 10 === 0) await sleep(5);
    }
  })();
  try {
    for (let i = 0; i < 600 && acknowledged.length < 200; i++) await sleep(100); // a busy machine is slow
    const ackedBeforeKill = acknowledged.length;
    await turret.kill(); // batches in flight
    for (let i = 0; i < 300 && client.stats().breakerOpened === 0; i++) await sleep(100);
    assert.ok(client.stats().breakerOpened >= 1, JSON.stringify(client.stats()));
    await sleep(500);
    await turret.start(); // same port; the restart seals the dead workers' segments
    await sleep(1000);
    running = false;
    await app;
    assert.ok(await client.flush(120), JSON.stringify(client.stats()));
    const stats = client.stats();
    await turret.stop();

    assert.ok(ackedBeforeKill >= 200, `only ${ackedBeforeKill} acknowledged before the kill`);
    assert.equal(stats.dropped + stats.rejected, 0);
    assert.equal(stats.delivered, tracked.length);
    assert.equal(new Set(acknowledged).size, acknowledged.length, "an event was acknowledged twice");
    assert.deepEqual(new Set(acknowledged), new Set(tracked));
    const landed = turret.landed();
    assert.deepEqual(new Set(Object.keys(landed)), new Set(tracked), "an acknowledged event is missing, or a stranger landed");
    // A batch the dead server fsynced without answering was sent again under the same event ids (the loader
    // keeps one copy): only the batches in flight at the kill.
    const twice = Object.values(landed).filter((e) => e.count > 1).length;
    assert.ok(twice <= client.maxInFlight * client.batchSize, `${twice} landed twice`);
    console.log(`tracked ${tracked.length}, acknowledged before the kill ${ackedBeforeKill}, landed twice ${twice}`);
  } finally {
    running = false;
    await client.shutdown(0);
    await turret.kill();
  }
});

test("quota refusals wait for the reset and nothing beyond the quota lands", async () => {
  const limit = 300;
  const turret = await (await Turret.create("--plan", "pro", "--monthly-limit", String(limit))).start();
  const acknowledged = [];
  const client = new Client(turret.key, {
    host: turret.url, backoffBase: 0.01, logger: quiet,
    onDelivered: (results) => acknowledged.push(...results.map((r) => r.eventId)),
  });
  try {
    const tracked = [];
    for (let i = 0; i < 500; i++) tracked.push(client.track("user_message", { prompt: `over quota ${i}` }));
    assert.equal(await client.flush(5), false, "the rest waits for the quota period to reset");
    await sleep(500);
    const stats = client.stats();
    await sleep(1500);
    assert.equal(client.stats().requests, stats.requests, "Retry-After (the period's end) is honoured");
    assert.equal(stats.rejected, 0);
    assert.ok(stats.delivered <= limit && stats.delivered >= limit * 0.95, String(stats.delivered));
    assert.equal(new Set(acknowledged).size, stats.delivered);
    assert.equal(await client.shutdown(0.5), false);
    assert.equal(client.stats().dropped, tracked.length - stats.delivered, "counted, never silent");
    await turret.stop();
    const landed = turret.landed();
    assert.deepEqual(new Set(Object.keys(landed)), new Set(acknowledged), "only acknowledged events are stored");
    assert.ok(Object.values(landed).every((e) => e.count === 1));
  } finally {
    await turret.kill();
  }
});

test("events queued when the process ends are delivered by the exit hook", async () => {
  const turret = await (await Turret.create()).start();
  try {
    const script = `
      import { Client } from ${JSON.stringify(DIST)};
      // A generous exit timeout: the hook is under test, not how fast a busy machine answers.
      const client = new Client(process.argv[1], { host: process.argv[2], flushInterval: 60, shutdownTimeout: 60 });
      const ids = [];
      for (let i = 0; i < 30; i++) ids.push(client.track("user_message", { prompt: "exit " + i }));
      console.log(ids.join(" "));
    `;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script, turret.key, turret.url], {
      encoding: "utf8",
      timeout: 60_000,
    });
    const ids = out.trim().split(" ");
    assert.equal(ids.length, 30);
    const landed = turret.landed();
    assert.ok(ids.every((id) => landed[id]?.count === 1), "the exit hook did not deliver the queue");
  } finally {
    await turret.kill();
  }
});
