"""``python -m turret.demo`` (what ``make demo`` runs): Turret end to end on the demo data set.

Every step goes through a real interface, as a user's app and an operator would:

1. create (or reuse) the ``demo`` project through the control plane and get a fresh API key;
2. start the ingest API (``turret serve``) as a subprocess on a free port and wait for ``/healthz``;
3. post the demo events over HTTP to ``/track/batch`` and check every one was acknowledged;
4. stop the API with SIGTERM, which seals its landing segments;
5. ``turret pipeline run`` (the hourly Airflow DAG, once);
6. print ``turret topics`` and ``turret journeys``, where the published marts are, and the dashboard's URL.

Re-runs are idempotent: the events carry the same client ``event_id`` each time, and the loader keeps
one row per ``(project_id, event_id)``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from turret.settings import Settings, SettingsError

STEPS = 6
DEFAULT_PROJECT = "demo"
DEFAULT_PLAN = "pro"
BATCH_SIZE = 100
HEALTH_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
# Retries for 429/503 and connection errors while posting: the API may shed load, the demo should not fail.
POST_ATTEMPTS = 6


class DemoError(RuntimeError):
    """A step failed; the message says which and what to look at. Printed without a stack trace."""


def turret_command() -> list[str]:
    """How to run the ``turret`` CLI of this interpreter's environment, whatever the PATH is."""
    candidate = Path(sys.executable).parent / "turret"
    if candidate.exists():
        return [str(candidate)]
    return [sys.executable, "-c", "from turret.cli import main; main()"]


def command_available(name: str) -> bool:
    """Whether ``turret <name>`` is registered and its module imports (others may still be writing it)."""
    import importlib

    from turret.cli import COMMANDS

    if name not in COMMANDS:
        return False
    module, attr = COMMANDS[name]
    try:
        return hasattr(importlib.import_module(module), attr)
    except ImportError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def select_events(seed: int, sessions: int | None, events: int | None, now: datetime) -> list:
    """The demo events to post: ``sessions`` sessions (default 450) of messages and the outcomes that
    follow them, cut to the first ``events`` if given.

    The cut keeps whole sessions in order and trims only the last one, so short runs still have journeys.
    """
    from turret.demo.dataset import generate, outcomes

    def both(n: int) -> list:
        messages = generate(seed=seed, n_sessions=n, now=now)
        return sorted(messages + outcomes(messages, seed), key=lambda e: (e.timestamp, e.event_id))

    n_sessions = sessions or 450
    data = both(n_sessions)
    if events is None:
        return data
    # Asked for more than the sessions give: generate more sessions (about 8 events each).
    while len(data) < events and sessions is None:
        n_sessions = int(n_sessions * events / max(len(data), 1)) + 10
        data = both(n_sessions)
    by_session: dict[str, list] = {}
    for e in data:
        by_session.setdefault(e.session_id, []).append(e)
    chosen: list = []
    for sid in sorted(by_session):
        chosen.extend(by_session[sid][: events - len(chosen)])
        if len(chosen) >= events:
            break
    chosen.sort(key=lambda e: (e.timestamp, e.event_id))
    return chosen


# --- steps ---------------------------------------------------------------------------------------------


def ensure_project(settings: Settings, name: str, plan: str) -> tuple[str, str, bool]:
    """Create the project, or reuse it and rotate its key; returns ``(project_id, api_key, created)``."""
    from turret.controlplane import ControlPlane, ControlPlaneError

    cp = ControlPlane.from_settings(settings)
    try:
        try:
            project = cp.get_project(name)
        except ControlPlaneError:
            project, key = cp.create_project(name, plan)
            return project.project_id, key, True
        # The key was shown once when the project was created; rotating is how we get one again.
        return project.project_id, cp.rotate_key(name), False
    except ControlPlaneError as exc:
        raise DemoError(f"could not prepare project {name!r}: {exc}") from None
    finally:
        cp.dispose()


class IngestServer:
    """``turret serve`` as a child process; output goes to a log file shown when it fails."""

    def __init__(self, settings: Settings, env: dict[str, str], host: str, port: int, log_path: Path) -> None:
        self.settings = settings
        self.env = env
        self.host = host
        self.port = port
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = HEALTH_TIMEOUT_S) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [*turret_command(), "serve", "--host", self.host, "--port", str(self.port)]
        with open(self.log_path, "w") as log:
            # A new process group, so a Ctrl-C meant for the demo reaches the server only through stop().
            self.proc = subprocess.Popen(
                cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DemoError(
                    f"`turret serve` exited with code {self.proc.returncode} before answering. "
                    f"Its output ({self.log_path}):\n{self.tail()}"
                )
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        self.stop()
        raise DemoError(
            f"the ingest API did not answer {self.url}/healthz within {timeout:.0f}s:\n{self.tail()}"
        )

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM (gunicorn shuts down gracefully and the landing writer seals its segments), then wait."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise DemoError(
                f"the ingest API did not stop within {timeout:.0f}s of SIGTERM; killed it"
            ) from None

    def tail(self, lines: int = 20) -> str:
        try:
            with open(self.log_path, errors="replace") as fh:
                return "".join(deque(fh, maxlen=lines)).rstrip()
        except OSError:
            return "(no output)"


def post_batch(url: str, api_key: str, payloads: list[dict[str, Any]], *, sleep=time.sleep) -> dict[str, Any]:
    """POST one batch to ``/track/batch``; retries on 429/503/connection errors, else raises DemoError."""
    body = json.dumps({"events": payloads}).encode()
    last = ""
    for attempt in range(POST_ATTEMPTS):
        req = urllib.request.Request(
            url + "/track/batch",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "X-API-Key": api_key},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            if exc.code not in (429, 503):
                raise DemoError(f"POST /track/batch answered {exc.code}: {detail}") from None
            last = f"{exc.code}: {detail}"
            retry_after = exc.headers.get("Retry-After")
            delay = float(retry_after) if retry_after and retry_after.isdigit() else 0.5 * 2**attempt
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
            delay = 0.5 * 2**attempt
        sleep(min(delay, 10.0))
    raise DemoError(f"POST /track/batch failed {POST_ATTEMPTS} times; last answer: {last}")


def post_events(
    url: str,
    api_key: str,
    events: list,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Post every event in batches and check each was acknowledged with its own id; returns the count."""
    done = 0
    for start in range(0, len(events), batch_size):
        batch = events[start : start + batch_size]
        answer = post_batch(url, api_key, [e.to_payload() for e in batch])
        results = answer.get("results") or []
        failed = [r for r in results if not (isinstance(r, dict) and r.get("success"))]
        if answer.get("accepted") != len(batch) or len(results) != len(batch) or failed:
            first = failed[0] if failed else answer
            raise DemoError(
                f"batch at event {start}: {answer.get('accepted')} of {len(batch)} accepted; first problem: "
                f"{json.dumps(first)[:300]}"
            )
        for event, result in zip(batch, results, strict=True):
            if result.get("event_id") != event.event_id:
                raise DemoError(
                    f"event {event.event_id} was acknowledged as {result.get('event_id')!r}: the API did not "
                    "keep the client's event_id, so re-runs would duplicate events"
                )
        done += len(batch)
        if progress:
            progress(done, len(events))
    return done


def run_cli(args: list[str], env: dict[str, str], *, indent: str = "    ") -> int:
    """Run ``turret <args>`` streaming its output, indented; returns the exit code."""
    with subprocess.Popen(
        [*turret_command(), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            click.echo(indent + line.rstrip("\n"))
        return proc.wait()


# --- the command ---------------------------------------------------------------------------------------


def _step(n: int, text: str) -> None:
    click.secho(f"[{n}/{STEPS}] {text}", bold=True)


def _progress_printer() -> Callable[[int, int], None]:
    tty = sys.stdout.isatty()
    shown = [0.0]

    def show(done: int, total: int) -> None:
        if tty:
            click.echo(f"\r    posted {done:>6}/{total} events", nl=done == total)
        elif done == total or done - shown[0] >= total / 10:
            shown[0] = done
            click.echo(f"    posted {done:>6}/{total} events")

    return show


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--sessions", type=click.IntRange(1, 100_000), default=None,
              help="Number of demo sessions to generate [default: 450: ~3,400 messages, ~960 outcomes].")
@click.option("--events", type=click.IntRange(1, 1_000_000), default=None,
              help="Post only this many events (whole sessions first), for a quicker run.")
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the generated data set.")
@click.option("--project", "project_name", default=DEFAULT_PROJECT, show_default=True,
              help="Project to create or reuse.")
@click.option("--port", type=click.IntRange(0, 65535), default=0,
              help="Port for the ingest API [default: a free port].")
@click.option("--batch-size", type=click.IntRange(1, 500), default=BATCH_SIZE, show_default=True,
              help="Events per POST /track/batch.")
@click.option("--skip-pipeline", is_flag=True, help="Stop after the events have landed (steps 1-4).")
def main(sessions, events, seed, project_name, port, batch_size, skip_pipeline) -> None:
    """Run Turret end to end on a generated week of AI-assistant conversations."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    env = {**os.environ, **settings.as_env()}
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    server: IngestServer | None = None
    try:
        click.echo(f"Turret demo in TURRET_HOME={settings.home}")
        _step(1, f"Creating demo project {project_name!r} (plan {DEFAULT_PLAN}) ...")
        project_id, api_key, created = ensure_project(settings, project_name, DEFAULT_PLAN)
        click.echo(f"    {'created' if created else 'reusing'} project {project_id}; "
                   f"API key {api_key[:12]}... ({'new' if created else 'rotated'})")

        _step(2, "Starting the ingest API (turret serve) ...")
        if not command_available("serve"):
            raise DemoError("`turret serve` is not available in this checkout (turret.cli.serve is missing)")
        host = "127.0.0.1"
        server = IngestServer(settings, env, host, port or free_port(host),
                              Path(settings.home) / "logs" / "demo-ingest.log")
        server.start()
        click.echo(f"    listening on {server.url} (log: {server.log_path})")

        # Timestamps end at today's midnight UTC: re-runs on the same day post byte-identical events.
        now = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        data = select_events(seed, sessions, events, now)
        n_sessions = len({e.session_id for e in data})
        n_users = len({e.user_id for e in data})
        _step(3, f"Posting {len(data)} events ({n_sessions} sessions, {n_users} users) "
                 "to POST /track/batch ...")
        posted = post_events(server.url, api_key, data, batch_size=batch_size, progress=_progress_printer())
        click.echo(f"    all {posted} events acknowledged")

        _step(4, "Stopping the ingest API (SIGTERM seals its landing segments) ...")
        code = server.stop()
        server = None
        if code not in (0, None):
            click.echo(f"    note: turret serve exited with code {code}")
        _report_landing(settings)

        if skip_pipeline:
            click.echo("Stopped after step 4 (--skip-pipeline). Run `turret pipeline run` to continue.")
            return
        _step(5, "Running the pipeline (turret pipeline run: the hourly Airflow DAG, once) ...")
        if not command_available("pipeline"):
            raise DemoError(
                "`turret pipeline run` is not available in this checkout (turret.cli.pipeline is missing); "
                f"the events are in the landing store under {settings.landing_root} and will be loaded by "
                "the first pipeline run"
            )
        if run_cli(["pipeline", "run"], env) != 0:
            raise DemoError("the pipeline run failed (see its output above)")

        _step(6, "Results")
        results = (("topics", ["topics", "--limit", "15"]), ("journeys", ["journeys", "--limit", "10"]))
        for name, args in results:
            click.secho(f"  $ turret {' '.join(args)}", fg="cyan")
            if not command_available(name):
                click.echo(f"    `turret {name}` is not available in this checkout")
            elif run_cli(args, env) != 0:
                raise DemoError(f"`turret {' '.join(args)}` failed (see its output above)")
        _report_marts(settings)
        _report_dashboard(settings)
    except DemoError as exc:
        click.secho(f"Demo stopped: {exc}", fg="red", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("\nInterrupted.", err=True)
        sys.exit(130)
    finally:
        if server is not None:
            try:
                server.stop()
            except DemoError as exc:
                click.echo(str(exc), err=True)


def _report_landing(settings: Settings) -> None:
    from turret import landing

    root = settings.landing_root
    sealed = list(landing.iter_sealed_segments(root)) if root.exists() else []
    still_open = list(landing.iter_open_segments(root)) if root.exists() else []
    click.echo(f"    landing store {root}: {len(sealed)} sealed segment(s), {len(still_open)} open")


def _report_dashboard(settings: Settings) -> None:
    """The dashboard's URL and how to sign in (the password is generated here on the first demo)."""
    from turret.ui.auth import resolve_password

    password, path, created = resolve_password(settings)
    host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    click.echo("")
    click.secho(f"Dashboard: http://{host}:{settings.ui_port}", bold=True)
    click.echo("  start it with `make up` (everything) or `.venv/bin/turret ui` (the dashboard alone)")
    if created:
        click.echo(f"  sign-in password (generated now, shown once; kept in {path}): {password}")
    elif path is not None:
        click.echo(f"  sign-in password: in {path} (or set TURRET_UI_PASSWORD)")
    else:
        click.echo("  sign-in password: TURRET_UI_PASSWORD")


def _report_marts(settings: Settings) -> None:
    published = settings.published
    click.echo("")
    click.echo("Where the results are:")
    click.echo(f"  warehouse (written by the pipeline only): {settings.warehouse}")
    click.echo(f"  published marts for BI tools:             {published}")
    databases = sorted(published.rglob("*.duckdb")) if published.exists() else []
    parquet_dirs = sorted({p.parent for p in published.rglob("*.parquet")}) if published.exists() else []
    for db in databases:
        click.echo(f"    DuckDB file: {db}")
        click.echo(f"      open it:  duckdb -readonly {db}    (then: show all tables;)")
    for d in parquet_dirs:
        click.echo(f"    Parquet:     {d}")
        click.echo(f"      query it: duckdb -c \"select * from read_parquet('{d}/*.parquet') limit 10\"")
    if not databases and not parquet_dirs:
        click.echo("    (nothing published yet)")
