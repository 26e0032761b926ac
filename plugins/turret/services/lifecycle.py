"""Starting and stopping the product's long-running processes (`turret up`, `turret down`, `turret status`).

See :mod:`turret.services` for what runs; :mod:`turret.services.processes` finds the processes,
:mod:`turret.services.state` reads what `up` left on disk, :mod:`turret.services.http_api` asks the services.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from turret import airflow_env
from turret.services import http_api, processes, state
from turret.services.errors import ServiceError
from turret.services.http_api import ADMIN_USER
from turret.services.state import REDIS, ComponentState, Layout, celery_worker_name
from turret.settings import Settings

DEFAULT_API_PORT = 8000
DEFAULT_AIRFLOW_PORT = 8080
DEFAULT_UI_PORT = 8050
# How long `up --wait` waits for both HTTP endpoints. Airflow's API server alone takes 20-50 s on 2 cores.
DEFAULT_WAIT_SECONDS = 240.0
# How long `down` waits for a process group after the polite signal before SIGKILL.
DEFAULT_STOP_SECONDS = 30.0

# Airflow on a 2-core machine: a few task processes at a time, one API worker.
_AIRFLOW_UP_ENV = {
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    "AIRFLOW__CORE__PARALLELISM": "4",
    "AIRFLOW__API__WORKERS": "1",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
}


@dataclass(frozen=True)
class Component:
    """One long-running process of the product."""

    name: str
    argv: list[str]
    env: dict[str, str]


def turret_bin() -> list[str]:
    """The ``turret`` command of the running interpreter's environment."""
    script = Path(sys.executable).parent / "turret"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from turret.cli import main; main()"]


def service_environment(settings: Settings, *, airflow_port: int, host: str) -> dict[str, str]:
    """The environment of every component: Airflow's (:mod:`turret.airflow_env`) plus the `up` settings.

    Values the caller already exported (``AIRFLOW__*``) win, as in :func:`airflow_environment`, except the
    ones that must follow ``--airflow-port``: the execution API URL task processes report to.
    """
    env = airflow_env.airflow_environment(settings)
    for key, value in _AIRFLOW_UP_ENV.items():
        env.setdefault(key, value)
    base = f"http://{_client_host(host)}:{airflow_port}"
    env["AIRFLOW__API__HOST"] = host
    env["AIRFLOW__API__PORT"] = str(airflow_port)
    env["AIRFLOW__API__BASE_URL"] = base
    env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"{base}/execution/"
    env[processes.MARKER_ENV] = str(Layout(settings.home).home)
    return env


def redis_server_bin() -> str | None:
    """Debian's ``redis-server`` (installed by `make system-deps`), or whichever is on PATH."""
    return shutil.which("redis-server") or next(
        (str(p) for p in (Path("/usr/bin/redis-server"), Path("/usr/sbin/redis-server")) if p.exists()), None)


def runs_private_broker(settings: Settings) -> bool:
    """Whether `up` starts its own redis-server: Celery mode without a broker of the caller's."""
    return settings.executor == "celery" and not settings.broker_url


def celery_components(settings: Settings, env: dict[str, str]) -> tuple[list[Component], list[Component]]:
    """(broker, workers) of Celery mode: the private redis-server (none when TURRET_BROKER_URL names a
    broker) and TURRET_CELERY_WORKERS `airflow celery worker` processes, each one task slot, serving the
    default queue and the warehouse queue (on this host the warehouse file is local)."""
    if settings.executor != "celery":
        return [], []
    broker = []
    if runs_private_broker(settings):
        redis = redis_server_bin()
        if redis is None:
            raise ServiceError("TURRET_EXECUTOR=celery needs redis-server, which is not installed: "
                               "`make system-deps` installs Debian's (as root), or set TURRET_BROKER_URL "
                               "to a broker of your own")
        data = Path(settings.home) / "redis"
        data.mkdir(parents=True, exist_ok=True)
        # Loopback only, no snapshots: a task lost with the queue stays `queued` in Airflow until the
        # scheduler's [scheduler] task_queued_timeout (10 min) sends it again.
        broker.append(Component(REDIS, [redis, "--bind", "127.0.0.1", "--port", str(settings.redis_port),
                                        "--dir", str(data), "--save", "", "--appendonly", "no",
                                        "--protected-mode", "yes", "--daemonize", "no"], env))
    airflow = airflow_env.airflow_bin()
    queues = f"{airflow_env.DEFAULT_QUEUE},{settings.warehouse_queue}"
    workers = [
        Component(celery_worker_name(i), [airflow, "celery", "worker", "--celery-hostname",
                                          f"turret-worker-{i}@%h", "--concurrency", "1", "--queues", queues,
                                          "--skip-serve-logs", "--without-gossip", "--without-mingle"], env)
        for i in range(1, settings.celery_workers + 1)
    ]
    return broker, workers


def components(settings: Settings, *, api_port: int, airflow_port: int, host: str,
               ui_port: int = DEFAULT_UI_PORT) -> list[Component]:
    """The processes `up` starts, in start order: six, and with TURRET_EXECUTOR=celery the broker first
    and the Celery workers after the scheduler."""
    env = service_environment(settings, airflow_port=airflow_port, host=host)
    airflow = airflow_env.airflow_bin()
    broker, workers = celery_components(settings, env)
    # Task logs are files under AIRFLOW_HOME/logs that the API server reads directly (one machine), so the
    # scheduler's, triggerer's and workers' log-serving subprocesses (fixed ports 8793/8794) are not needed.
    return [
        *broker,
        Component("airflow-api-server", [airflow, "api-server", "--host", host, "--port", str(airflow_port),
                                         "--workers", env["AIRFLOW__API__WORKERS"]], env),
        Component("airflow-scheduler", [airflow, "scheduler", "--skip-serve-logs"], env),
        *workers,
        Component("airflow-dag-processor", [airflow, "dag-processor"], env),
        Component("airflow-triggerer", [airflow, "triggerer", "--skip-serve-logs"], env),
        Component("ingest-api", [*turret_bin(), "serve", "--host", host, "--port", str(api_port),
                                 "--workers", str(settings.workers)], env),
        Component("dashboard", [*turret_bin(), "ui", "--host", host, "--port", str(ui_port)], env),
    ]


# ---------------------------------------------------------------------------------------------------------
# up / down


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _client_host(host: str) -> str:
    # A server bound to every interface is reached locally through the loopback address.
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start(settings: Settings, *, api_port: int = DEFAULT_API_PORT, airflow_port: int = DEFAULT_AIRFLOW_PORT,
          host: str = "127.0.0.1", wait: bool = True, wait_seconds: float = DEFAULT_WAIT_SECONDS,
          echo: Callable[[str], None] = print, ui_port: int = DEFAULT_UI_PORT) -> dict:
    """Start every component detached; with ``wait``, return once the HTTP endpoints answer.

    Refuses when any component is already running; removes pid files of dead processes. On a failed
    start, what was started is stopped again and the failing component's log tail is in the error.
    """
    settings = absolute_settings(settings)
    layout = Layout(settings.home)
    states = state.read_states(layout)
    running = [s for s in states if s.running]
    if running:
        listed = ", ".join(f"{s.name} (pid {s.pid})" for s in running)
        raise ServiceError(f"Turret is already running in {layout.home}: {listed}. "
                           "See `turret status`; stop it with `make down` (or `turret down`).")
    # A component whose main process died can leave children behind (in its session); starting again
    # beside them would lose track of them.
    sessions = _our_sessions(layout, {s.name: s for s in states})
    leftover = processes.leftover_processes(layout.home, sessions=sessions)
    if leftover:
        listed = ", ".join(f"pid {pid} ({cmd[:60]})" for pid, cmd in leftover[:5])
        raise ServiceError(f"processes of an earlier `turret up` in {layout.home} are still running: "
                           f"{listed}. Stop them with `turret down` first.")
    for name in state.remove_stale(layout, states):
        echo(f"Removed the stale pid file of {name} (its process is gone).")
    ports = (("--api-port", api_port), ("--airflow-port", airflow_port), ("--ui-port", ui_port))
    for i, (label, port) in enumerate(ports):
        for other, other_port in ports[i + 1:]:
            if port == other_port:
                raise ServiceError(f"{label} and {other} are both {port}; they must differ")
    for label, port in ports:
        if not port_free(host, port):
            raise ServiceError(f"port {port} ({label}) on {host} is in use by another program; "
                               f"choose another with {label}")

    layout.run_dir.mkdir(parents=True, exist_ok=True)
    layout.log_dir.mkdir(parents=True, exist_ok=True)
    comps = components(settings, api_port=api_port, airflow_port=airflow_port, host=host, ui_port=ui_port)
    try:
        airflow_env.ensure_airflow_ready(settings, comps[0].env, echo=echo)
    except (RuntimeError, OSError) as exc:
        raise ServiceError(f"cannot prepare Airflow's metadata database: {exc}") from None

    client = _client_host(host)
    endpoints = {"api_url": f"http://{client}:{api_port}", "airflow_url": f"http://{client}:{airflow_port}",
                 "ui_url": f"http://{client}:{ui_port}", "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    endpoints["executor"] = settings.executor
    if settings.executor == "celery":
        endpoints["broker_url"] = settings.celery_broker
    endpoints["start_times"] = {}
    procs: dict[str, subprocess.Popen] = {}
    try:
        for comp in comps:
            procs[comp.name] = proc = _spawn(comp, layout)
            # Remembered so that a pid reused by some other program is never taken for ours.
            endpoints["start_times"][comp.name] = processes.start_time(proc.pid)
            _write_json(layout.state_file, endpoints)
            if comp.name == REDIS:
                # The workers and the scheduler connect at once; a broker still starting would fail them.
                _wait_port(layout, proc, "127.0.0.1", settings.redis_port, 20.0)
        echo(f"Started {len(procs)} processes: " + ", ".join(f"{n} (pid {p.pid})" for n, p in procs.items()))
        if wait:
            _wait_ready(layout, procs, endpoints, wait_seconds, echo)
    except ServiceError as exc:
        stop(settings, echo=lambda _msg: None)
        raise ServiceError(f"{exc}\nStopped the processes this `turret up` had started.") from None
    except BaseException:
        stop(settings, echo=lambda _msg: None)
        raise
    return endpoints


def absolute_settings(settings: Settings) -> Settings:
    """The same settings with absolute paths: the detached processes run in TURRET_HOME, not in the
    caller's working directory, so a relative TURRET_HOME (or landing dir, ...) would point elsewhere."""
    import dataclasses

    changes: dict[str, object] = {"home": Path(settings.home).resolve()}
    for name in ("landing_dir", "warehouse_path", "published_dir"):
        value = getattr(settings, name)
        if value:
            changes[name] = str(Path(value).resolve())
    return dataclasses.replace(settings, **changes)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def _spawn(comp: Component, layout: Layout) -> subprocess.Popen:
    log = open(layout.log_file(comp.name), "ab")  # noqa: SIM115 - the child keeps it; ours is closed below
    try:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} turret up: {' '.join(comp.argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(comp.argv, env=comp.env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=layout.home)
    except OSError as exc:
        raise ServiceError(f"cannot start {comp.name} ({comp.argv[0]}): {exc}") from None
    finally:
        log.close()
    tmp = layout.pid_file(comp.name).with_suffix(".pid.tmp")
    tmp.write_text(f"{proc.pid}\n")
    tmp.replace(layout.pid_file(comp.name))
    return proc


def _wait_port(layout: Layout, proc: subprocess.Popen, host: str, port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if broker_health(f"redis://{host}:{port}/0")[0]:
            return
        time.sleep(0.1)
    raise ServiceError(f"redis-server did not answer on {host}:{port}; last lines of "
                       f"{layout.log_file(REDIS)}:\n{_log_tail(layout.log_file(REDIS))}")


def broker_health(url: str) -> tuple[bool, str]:
    """Whether the redis broker at ``url`` answers PING."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            answer = sock.recv(64)
    except OSError as exc:
        return False, f"no answer ({exc})"
    if answer.startswith(b"+PONG"):
        return True, "healthy"
    return False, answer.decode(errors="replace").strip()[:100] or "no answer"


def _wait_ready(layout: Layout, procs: dict[str, subprocess.Popen], endpoints: dict[str, str],
                wait_seconds: float, echo: Callable[[str], None]) -> None:
    echo(f"Waiting for the ingest API, the dashboard and Airflow's API server "
         f"(up to {wait_seconds:.0f} s) ...")
    deadline = time.monotonic() + wait_seconds
    ready = {"ingest API": False, "dashboard": False, "Airflow API": False}
    while time.monotonic() < deadline:
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise ServiceError(f"{name} exited with status {proc.returncode} while starting; "
                                   f"last lines of {layout.log_file(name)}:\n"
                                   f"{_log_tail(layout.log_file(name))}")
        if not ready["ingest API"]:
            ready["ingest API"] = http_api.api_health(endpoints["api_url"])[0]
        if not ready["dashboard"]:
            ready["dashboard"] = http_api.dashboard_health(endpoints["ui_url"])[0]
        if not ready["Airflow API"]:
            ready["Airflow API"] = http_api.airflow_health(endpoints["airflow_url"])[0]
        if all(ready.values()):
            return
        time.sleep(0.5)
    missing = " and ".join(k for k, v in ready.items() if not v)
    raise ServiceError(f"the {missing} did not answer within {wait_seconds:.0f} s; see the logs in "
                       f"{layout.log_dir}")


@dataclass
class StopReport:
    stopped: list[str] = field(default_factory=list)
    killed: list[str] = field(default_factory=list)
    stragglers: list[tuple[int, str]] = field(default_factory=list)
    sealed: list[Path] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)


# Stop order: intake and scheduling first, then the Celery workers (a warm shutdown finishes the running
# task), the Airflow API server and the broker last, because task processes that are finishing report their
# state to the API server and their result through the broker's worker.
_FIRST_WAVE = ("ingest-api", "dashboard", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
_LAST_WAVE = ("airflow-api-server", REDIS)


def _stop_waves(names: list[str]) -> list[tuple[str, ...]]:
    middle = tuple(n for n in names if n not in _FIRST_WAVE and n not in _LAST_WAVE)
    return [_FIRST_WAVE, middle, _LAST_WAVE]


def stop(settings: Settings, *, timeout: float = DEFAULT_STOP_SECONDS,
         echo: Callable[[str], None] = print) -> StopReport:
    """Stop every component: SIGTERM to its process group, SIGKILL to what is left of its session after
    ``timeout`` seconds, then any straggler of this home found in /proc; seal landing segments left open;
    remove the pid files."""
    from turret import landing

    settings = absolute_settings(settings)
    layout = Layout(settings.home)
    report = StopReport()
    names = state.component_names(layout)
    states = {s.name: s for s in state.read_states(layout)}
    sessions = _our_sessions(layout, states)
    report.stale = state.remove_stale(layout, list(states.values()))
    for wave in _stop_waves(names):
        pending = {}
        for name in wave:
            component = states.get(name)
            if component is None or not component.running:
                continue
            echo(f"Stopping {name} (pid {component.pid}) ...")
            # start_new_session: the pid is also the process group id and the session id.
            pending[name] = component.pid
            processes.signal_group(component.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for name, sid in list(pending.items()):
                processes.reap(sid)
                if not processes.session_members(sid):
                    report.stopped.append(name)
                    del pending[name]
            time.sleep(0.2)
        for name, sid in pending.items():
            echo(f"{name} did not stop within {timeout:.0f} s: killing its processes")
            for pid in processes.session_members(sid):
                processes.send_signal(pid, signal.SIGKILL)
            processes.reap(sid)
            report.killed.append(name)
    # Processes not waited on above: children of a component whose main process had already died (their
    # session outlives it), and any that started a session of their own (found by their environment).
    stragglers = processes.leftover_processes(layout.home, sessions=sessions)
    for pid, _cmd in stragglers:
        processes.send_signal(pid, signal.SIGTERM)
    processes.wait_gone([p for p, _ in stragglers], 10.0)
    for pid, _cmd in stragglers:
        if processes.alive(pid):
            processes.send_signal(pid, signal.SIGKILL)
    processes.wait_gone([p for p, _ in stragglers], 5.0)
    report.stragglers = stragglers
    for name in names:
        layout.pid_file(name).unlink(missing_ok=True)
    layout.state_file.unlink(missing_ok=True)
    # turret serve seals its own segments on SIGTERM; after a SIGKILL they are orphans to seal here.
    if settings.landing_root.exists():
        report.sealed = landing.seal_orphans(settings.landing_root)
    return report


def _our_sessions(layout: Layout, states: dict[str, ComponentState]) -> set[int]:
    """Session ids of the components (each was started as a session leader), including those whose leader
    died: Linux never hands out a pid still used as a session id, so the members are ours. A leader pid
    now used by an unrelated process (start time differs) is left out."""
    recorded = state.read_endpoints(layout).get("start_times", {})
    sessions = set()
    for component in states.values():
        if component.pid is None:
            continue
        if component.running or not processes.alive(component.pid):
            sessions.add(component.pid)
        elif isinstance(recorded, dict) and recorded.get(component.name) == processes.start_time(
            component.pid
        ):
            sessions.add(component.pid)
    return sessions


def describe(settings: Settings) -> tuple[list[ComponentState], dict[str, tuple[bool, str]]]:
    """Each component's state and the health of the HTTP endpoints (when `up` recorded them)."""
    layout = Layout(settings.home)
    states = state.read_states(layout)
    endpoints = state.read_endpoints(layout)
    health: dict[str, tuple[bool, str]] = {}
    if endpoints.get("api_url"):
        health[f"ingest API {endpoints['api_url']}"] = http_api.api_health(endpoints["api_url"])
    if endpoints.get("ui_url"):
        health[f"dashboard {endpoints['ui_url']}"] = http_api.dashboard_health(endpoints["ui_url"])
    if endpoints.get("airflow_url"):
        health[f"Airflow {endpoints['airflow_url']}"] = http_api.airflow_health(endpoints["airflow_url"])
    if endpoints.get("broker_url"):
        health[f"Celery broker {endpoints['broker_url']}"] = broker_health(endpoints["broker_url"])
    return states, health


def format_uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"
