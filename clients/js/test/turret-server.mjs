// A real `turret serve` for the client's tests: its own TURRET_HOME and project, started, SIGKILLed and
// restarted on one port; the landing store read back with Turret's own reader (turret.landing).
import { execFileSync, spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const TURRET = process.env.TURRET_BIN ?? path.join(ROOT, ".venv/bin/turret");
export const PYTHON = process.env.TURRET_PYTHON ?? path.join(ROOT, ".venv/bin/python");

const READ_LANDING = `
import json, sys
from turret import landing
out = {}
for segment in [*landing.iter_sealed_segments(sys.argv[1]), *landing.iter_open_segments(sys.argv[1])]:
    for line in landing.read_segment(segment):
        if line.record is not None:
            entry = out.setdefault(line.record["event_id"], {"count": 0, "record": line.record})
            entry["count"] += 1
print(json.dumps(out))
`;

export async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class Turret {
  /** A project (`turret projects create` arguments, default a business plan) and a free port. */
  static async create(...createArgs) {
    const home = mkdtempSync(path.join(tmpdir(), "turret-js-"));
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("TURRET_")));
    env.TURRET_HOME = home;
    const args = createArgs.length ? createArgs : ["--plan", "business"];
    const out = execFileSync(TURRET, ["projects", "create", "js-tests", ...args], { env, encoding: "utf8" });
    const key = out.trim().split("\n").pop();
    return new Turret(home, env, key, await freePort());
  }

  constructor(home, env, key, port) {
    Object.assign(this, { home, env, key, port, url: `http://127.0.0.1:${port}`, proc: undefined });
    this.log = path.join(home, "serve.log");
  }

  async start({ workers = 2, threads = 4, timeout = 120_000 } = {}) {
    const fd = openSync(this.log, "a");
    this.proc = spawn(
      TURRET,
      ["serve", "--port", String(this.port), "--workers", String(workers), "--threads", String(threads)],
      { env: this.env, detached: true, stdio: ["ignore", fd, fd] },
    );
    closeSync(fd);
    const exited = new Promise((resolve) => this.proc.once("exit", resolve));
    this.exited = exited;
    const deadline = Date.now() + timeout;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) throw new Error(`turret serve exited:\n${readFileSync(this.log, "utf8")}`);
      try {
        const res = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(5000) });
        if (res.status === 200) return this;
      } catch {
        // not up yet
      }
      await sleep(200);
    }
    await this.kill();
    throw new Error(`turret serve did not answer within ${timeout} ms:\n${readFileSync(this.log, "utf8")}`);
  }

  /** SIGKILL the master and every worker at once: nothing gets to clean up. */
  async kill() {
    if (!this.proc) return;
    try {
      process.kill(-this.proc.pid, "SIGKILL");
    } catch {
      // already gone
    }
    await this.exited;
    await this.groupGone();
    this.proc = undefined;
  }

  /** SIGTERM (gunicorn's graceful stop, which seals the segments) and wait for the whole group. */
  async stop() {
    if (!this.proc) return;
    this.proc.kill("SIGTERM");
    await this.exited;
    await this.groupGone();
    this.proc = undefined;
  }

  async groupGone() {
    for (let i = 0; i < 600; i++) {
      try {
        process.kill(-this.proc.pid, 0);
      } catch {
        return;
      }
      await sleep(50);
    }
    throw new Error("server processes still alive");
  }

  /** `{event_id: {count, record}}` for everything in the landing store. */
  landed() {
    const out = execFileSync(PYTHON, ["-c", READ_LANDING, path.join(this.home, "landing")], {
      encoding: "utf8",
      maxBuffer: 1024 * 1024 * 1024,
    });
    return JSON.parse(out);
  }
}
