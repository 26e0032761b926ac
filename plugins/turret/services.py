"""The whole product on one machine: start, inspect and stop its long-running processes.

``turret up`` (``make up``) starts five processes, each in its own process group (its own session), each with
its log in ``<TURRET_HOME>/logs/<name>.log`` and its pid in ``<TURRET_HOME>/run/<name>.pid``:

- ``ingest-api``: ``turret serve`` (gunicorn; SIGTERM seals its landing segments);
- ``airflow-api-server``, ``airflow-scheduler`` (runs the LocalExecutor's task processes),
  ``airflow-dag-processor``, ``airflow-triggerer``: the Airflow 3 components, in the environment of
  :func:`turret.airflow_env.airflow_environment`.

``turret down`` signals each process group, waits, SIGKILLs what is left, then scans ``/proc`` for any process
still marked as belonging to this ``TURRET_HOME`` (every service and every child inherits
``TURRET_SERVICES_HOME``), so nothing is orphaned, and finally seals landing segments left open.

Nothing here imports Airflow: the components are separate programs.
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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from turret import airflow_env
from turret.settings import Settings

# Marks every process started by `turret up`, and (by inheritance) every child of one, with the home it
# belongs to: how `down` finds stragglers that left their process group (e.g. task processes).
MARKER_ENV = "TURRET_SERVICES_HOME"

DEFAULT_API_PORT = 8000
DEFAULT_AIRFLOW_PORT = 8080
# How long `up --wait` waits for both HTTP endpoints. Airflow's API server alone takes 20-50 s on 2 cores.
DEFAULT_WAIT_SECONDS = 240.0
# How long `down` waits for a process group after the polite signal before SIGKILL.
DEFAULT_STOP_SECONDS = 30.0
ADMIN_USER = "admin"
HOURLY_DAG = "turret_hourly"
AIRFLOW_HEALTH_PATH = "/api/v2/monitor/health"
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"

# Airflow on a 2-core machine: a few task processes at a time, one API worker.
_AIRFLOW_UP_ENV = {
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    "AIRFLOW__CORE__PARALLELISM": "4",
    "AIRFLOW__API__WORKERS": "1",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
}


class ServiceError(RuntimeError):
    """Something the user must fix or know about; the message says what, in one or a few lines."""


@dataclass(frozen=True)
class Component:
    """One long-running process of the product."""

    name: str
    argv: list[str]
    env: dict[str, str]


@dataclass
class ComponentState:
    name: str
    pid: int | None
    running: bool
    uptime_s: float | None = None
    stale: bool = False


@dataclass
class Layout:
    """Where `up` keeps its pid files, logs and the record of the ports it used."""

    home: Path
    run_dir: Path = field(init=False)
    log_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        self.home = Path(self.home).resolve()
        self.run_dir = self.home / "run"
        self.log_dir = self.home / "logs"

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    @property
    def state_file(self) -> Path:
        return self.run_dir / "services.json"


COMPONENT_NAMES = (
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "ingest-api",
)


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
    env[MARKER_ENV] = str(Layout(settings.home).home)
    return env


def components(settings: Settings, *, api_port: int, airflow_port: int, host: str) -> list[Component]:
    """The five processes `up` starts, in start order."""
    env = service_environment(settings, airflow_port=airflow_port, host=host)
    airflow = airflow_env.airflow_bin()
    # Task logs are files under AIRFLOW_HOME/logs that the API server reads directly (one machine), so the
    # scheduler's and triggerer's log-serving subprocesses (fixed ports 8793/8794) are not needed.
    return [
        Component("airflow-api-server", [airflow, "api-server", "--host", host, "--port", str(airflow_port),
                                         "--workers", env["AIRFLOW__API__WORKERS"]], env),
        Component("airflow-scheduler", [airflow, "scheduler", "--skip-serve-logs"], env),
        Component("airflow-dag-processor", [airflow, "dag-processor"], env),
        Component("airflow-triggerer", [airflow, "triggerer", "--skip-serve-logs"], env),
        Component("ingest-api", [*turret_bin(), "serve", "--host", host, "--port", str(api_port),
                                 "--workers", str(settings.workers)], env),
    ]


# ---------------------------------------------------------------------------------------------------------
# Processes


def _proc_stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    return raw[raw.rfind(")") + 2:].split()


def _alive(pid: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    out = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            out[key.decode(errors="replace")] = value.decode(errors="replace")
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _uptime(pid: int) -> float | None:
    start_ticks = _start_ticks(pid)
    if start_ticks is None:
        return None
    try:
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
    except (ValueError, IndexError, StopIteration, OSError):
        return None
    return max(0.0, time.time() - (boot + start_ticks / os.sysconf("SC_CLK_TCK")))


def _start_ticks(pid: int) -> int | None:
    stat = _proc_stat(pid)
    try:
        return int(stat[19]) if stat else None  # field 22 of /proc/<pid>/stat: start time in clock ticks.
    except (ValueError, IndexError):
        return None


def _belongs(pid: int, layout: Layout, start_ticks: int | None) -> bool:
    """Whether ``pid`` is still the process `up` started (not a reused pid): alive, leader of its own
    session, and started at the recorded time. (Its environment cannot tell: gunicorn and Airflow's API
    server rewrite their process title over it.)"""
    if not _alive(pid):
        return False
    stat = _proc_stat(pid)
    if stat is None or int(stat[3]) != pid:  # field 6: session id
        return False
    if start_ticks is not None:
        return _start_ticks(pid) == start_ticks
    return _environ(pid).get(MARKER_ENV) == str(layout.home)


def _reap(pid: int) -> None:
    # When `up` ran in this very process (tests, library use), its children must be reaped or they linger
    # as zombies; elsewhere they were re-parented to init and this is a no-op.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _session_members(sid: int) -> list[int]:
    """Live processes of session ``sid``: a component and all its children, including those that moved to
    a process group of their own (Airflow runs each task in its own group)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat is not None and stat[0] not in ("Z", "X") and int(stat[3]) == sid:
                members.append(int(entry.name))
    return members


def leftover_processes(home: Path | str, *, sessions: Iterable[int] = (),
                       exclude: Iterable[int] = ()) -> list[tuple[int, str]]:
    """Live processes of this home's services: in one of ``sessions`` (those `up` started) or carrying
    ``TURRET_SERVICES_HOME=<home>`` in their environment. The caller and its ancestors are never listed.

    A command line that merely names the home (someone's ``tail -f`` of a log) does not count: `down` stops
    what it lists."""
    layout = Layout(Path(home))
    sessions = set(sessions)
    skip = set(exclude) | _ancestors()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        pid = int(entry.name)
        stat = _proc_stat(pid)
        if stat is None or stat[0] in ("Z", "X"):
            continue
        if int(stat[3]) in sessions or _environ(pid).get(MARKER_ENV) == str(layout.home):
            found.append((pid, _cmdline(pid)))
    return found


def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        stat = _proc_stat(pid)
        if stat is None:
            break
        pid = int(stat[1])
    return pids


# ---------------------------------------------------------------------------------------------------------
# State


def read_states(layout: Layout) -> list[ComponentState]:
    """Each component's pid file and whether its process lives; a pid file of a dead process is `stale`."""
    recorded = read_endpoints(layout).get("start_ticks", {})
    states = []
    for name in COMPONENT_NAMES:
        path = layout.pid_file(name)
        try:
            pid = int(path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pid = None
        if pid is None:
            states.append(ComponentState(name, None, False, stale=path.exists()))
        elif _belongs(pid, layout, recorded.get(name) if isinstance(recorded, dict) else None):
            states.append(ComponentState(name, pid, True, _uptime(pid)))
        else:
            _reap(pid)
            states.append(ComponentState(name, pid, False, stale=True))
    return states


def _remove_stale(layout: Layout, states: list[ComponentState]) -> list[str]:
    removed = []
    for state in states:
        if state.stale:
            layout.pid_file(state.name).unlink(missing_ok=True)
            removed.append(state.name)
    return removed


def read_endpoints(layout: Layout) -> dict:
    try:
        data = json.loads(layout.state_file.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# ---------------------------------------------------------------------------------------------------------
# HTTP


def http_get(url: str, timeout: float = 2.0) -> tuple[int | None, str]:
    """(status, body) of a GET; (None, reason) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - our own local URLs
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return None, str(getattr(exc, "reason", exc))


def http_json(method: str, url: str, body: dict | None = None, token: str | None = None,
              timeout: float = 10.0) -> tuple[int | None, object]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - our own local URLs
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        return None, str(getattr(exc, "reason", exc))
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw.decode(errors="replace")


def airflow_health(airflow_url: str) -> tuple[bool, str]:
    """Whether Airflow's API answers, and a one-line summary of its components' health."""
    status, body = http_get(airflow_url + AIRFLOW_HEALTH_PATH)
    if status != 200:
        return False, f"no answer ({body})" if status is None else f"HTTP {status}"
    try:
        data = json.loads(body)
        parts = [f"{k}={v.get('status')}" for k, v in data.items() if isinstance(v, dict)]
    except (ValueError, AttributeError):
        return True, "answers"
    return True, ", ".join(parts) or "answers"


def api_health(api_url: str) -> tuple[bool, str]:
    status, body = http_get(api_url + "/healthz")
    if status == 200:
        return True, "healthy"
    return False, f"no answer ({body})" if status is None else f"HTTP {status}: {body.strip()[:200]}"


def admin_password(settings: Settings) -> str | None:
    """The password SimpleAuthManager generated for the admin user (None until the API server first ran)."""
    path = password_file(settings)
    try:
        return json.loads(path.read_text()).get(ADMIN_USER)
    except (OSError, ValueError, AttributeError):
        return None


def password_file(settings: Settings) -> Path:
    env = airflow_env.airflow_environment(settings)
    configured = env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
    return Path(configured) if configured else Path(env["AIRFLOW_HOME"]) / PASSWORDS_FILE


def airflow_token(settings: Settings, airflow_url: str) -> str:
    """A JWT for the admin user from the API server's SimpleAuthManager (``POST /auth/token``)."""
    password = admin_password(settings)
    if not password:
        raise ServiceError(f"no admin password yet in {password_file(settings)}")
    status, body = http_json("POST", airflow_url + "/auth/token",
                             {"username": ADMIN_USER, "password": password})
    if status not in (200, 201) or not isinstance(body, dict) or "access_token" not in body:
        raise ServiceError(f"Airflow refused the admin login (HTTP {status}): {body}")
    return body["access_token"]


def ensure_unpaused(settings: Settings, airflow_url: str, dag_id: str = HOURLY_DAG) -> str:
    """Unpause ``dag_id`` if Airflow knows it and it is paused (a DAG first registered by ``dags test``
    is created paused); returns what was found, for the user."""
    token = airflow_token(settings, airflow_url)
    status, body = http_json("GET", f"{airflow_url}/api/v2/dags/{dag_id}", token=token)
    if status == 404:
        return "not parsed yet; it will be created unpaused"
    if status != 200 or not isinstance(body, dict):
        raise ServiceError(f"cannot read DAG {dag_id} (HTTP {status}): {body}")
    if body.get("is_paused"):
        status, body = http_json("PATCH", f"{airflow_url}/api/v2/dags/{dag_id}", {"is_paused": False},
                                 token=token)
        if status != 200:
            raise ServiceError(f"cannot unpause DAG {dag_id} (HTTP {status}): {body}")
        return "was paused; unpaused"
    return "scheduled (not paused)"


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
          echo: Callable[[str], None] = print) -> dict:
    """Start every component detached; with ``wait``, return once both HTTP endpoints answer.

    Refuses when any component is already running; removes pid files of dead processes. On a failed
    start, what was started is stopped again and the failing component's log tail is in the error.
    """
    settings = absolute_settings(settings)
    layout = Layout(settings.home)
    states = read_states(layout)
    running = [s for s in states if s.running]
    if running:
        listed = ", ".join(f"{s.name} (pid {s.pid})" for s in running)
        raise ServiceError(f"Turret is already running in {layout.home}: {listed}. "
                           "See `turret status`; stop it with `make down` (or `turret down`).")
    # A component whose main process died can leave children behind (in its session); starting again
    # beside them would lose track of them.
    leftover = leftover_processes(layout.home, sessions=_our_sessions(layout, {s.name: s for s in states}))
    if leftover:
        listed = ", ".join(f"pid {pid} ({cmd[:60]})" for pid, cmd in leftover[:5])
        raise ServiceError(f"processes of an earlier `turret up` in {layout.home} are still running: "
                           f"{listed}. Stop them with `turret down` first.")
    for name in _remove_stale(layout, states):
        echo(f"Removed the stale pid file of {name} (its process is gone).")
    if api_port == airflow_port:
        raise ServiceError(f"--api-port and --airflow-port are both {api_port}; they must differ")
    for label, port in (("--api-port", api_port), ("--airflow-port", airflow_port)):
        if not port_free(host, port):
            raise ServiceError(f"port {port} ({label}) on {host} is in use by another program; "
                               f"choose another with {label}")

    layout.run_dir.mkdir(parents=True, exist_ok=True)
    layout.log_dir.mkdir(parents=True, exist_ok=True)
    comps = components(settings, api_port=api_port, airflow_port=airflow_port, host=host)
    try:
        airflow_env.ensure_airflow_ready(settings, comps[0].env, echo=echo)
    except (RuntimeError, OSError) as exc:
        raise ServiceError(f"cannot prepare Airflow's metadata database: {exc}") from None

    client = _client_host(host)
    endpoints = {"api_url": f"http://{client}:{api_port}", "airflow_url": f"http://{client}:{airflow_port}",
                 "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    endpoints["start_ticks"] = {}
    procs: dict[str, subprocess.Popen] = {}
    try:
        for comp in comps:
            procs[comp.name] = proc = _spawn(comp, layout)
            # Remembered so that a pid reused by some other program is never taken for ours.
            endpoints["start_ticks"][comp.name] = _start_ticks(proc.pid)
            _write_json(layout.state_file, endpoints)
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


def _wait_ready(layout: Layout, procs: dict[str, subprocess.Popen], endpoints: dict[str, str],
                wait_seconds: float, echo: Callable[[str], None]) -> None:
    echo(f"Waiting for the ingest API and Airflow's API server (up to {wait_seconds:.0f} s) ...")
    deadline = time.monotonic() + wait_seconds
    ready = {"ingest API": False, "Airflow API": False}
    while time.monotonic() < deadline:
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise ServiceError(f"{name} exited with status {proc.returncode} while starting; "
                                   f"last lines of {layout.log_file(name)}:\n"
                                   f"{_log_tail(layout.log_file(name))}")
        if not ready["ingest API"]:
            ready["ingest API"] = api_health(endpoints["api_url"])[0]
        if not ready["Airflow API"]:
            ready["Airflow API"] = airflow_health(endpoints["airflow_url"])[0]
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


# Stop order: intake and scheduling first, the Airflow API server last, because task processes that are
# finishing report their state to it.
_STOP_WAVES = (
    ("ingest-api", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"),
    ("airflow-api-server",),
)


def stop(settings: Settings, *, timeout: float = DEFAULT_STOP_SECONDS,
         echo: Callable[[str], None] = print) -> StopReport:
    """Stop every component: SIGTERM to its process group, SIGKILL to what is left of its session after
    ``timeout`` seconds, then any straggler of this home found in /proc; seal landing segments left open;
    remove the pid files."""
    from turret import landing

    settings = absolute_settings(settings)
    layout = Layout(settings.home)
    report = StopReport()
    states = {s.name: s for s in read_states(layout)}
    sessions = _our_sessions(layout, states)
    report.stale = _remove_stale(layout, list(states.values()))
    for wave in _STOP_WAVES:
        pending = {}
        for name in wave:
            state = states[name]
            if not state.running:
                continue
            echo(f"Stopping {name} (pid {state.pid}) ...")
            # start_new_session: the pid is also the process group id and the session id.
            pending[name] = state.pid
            _signal_group(state.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for name, sid in list(pending.items()):
                _reap(sid)
                if not _session_members(sid):
                    report.stopped.append(name)
                    del pending[name]
            time.sleep(0.2)
        for name, sid in pending.items():
            echo(f"{name} did not stop within {timeout:.0f} s: killing its processes")
            for pid in _session_members(sid):
                _signal(pid, signal.SIGKILL)
            _reap(sid)
            report.killed.append(name)
    # Processes not waited on above: children of a component whose main process had already died (their
    # session outlives it), and any that started a session of their own (found by their environment).
    stragglers = leftover_processes(layout.home, sessions=sessions)
    for pid, _cmd in stragglers:
        _signal(pid, signal.SIGTERM)
    _wait_gone([p for p, _ in stragglers], 10.0)
    for pid, _cmd in stragglers:
        if _alive(pid):
            _signal(pid, signal.SIGKILL)
    _wait_gone([p for p, _ in stragglers], 5.0)
    report.stragglers = stragglers
    for name in COMPONENT_NAMES:
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
    recorded = read_endpoints(layout).get("start_ticks", {})
    sessions = set()
    for state in states.values():
        if state.pid is None:
            continue
        if state.running or not _alive(state.pid):
            sessions.add(state.pid)
        elif isinstance(recorded, dict) and recorded.get(state.name) == _start_ticks(state.pid):
            sessions.add(state.pid)
    return sessions


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        for p in pids:
            _reap(p)
        time.sleep(0.2)


def describe(settings: Settings) -> tuple[list[ComponentState], dict[str, tuple[bool, str]]]:
    """Each component's state and the health of the two HTTP endpoints (when `up` recorded them)."""
    layout = Layout(settings.home)
    states = read_states(layout)
    endpoints = read_endpoints(layout)
    health: dict[str, tuple[bool, str]] = {}
    if endpoints.get("api_url"):
        health[f"ingest API {endpoints['api_url']}"] = api_health(endpoints["api_url"])
    if endpoints.get("airflow_url"):
        health[f"Airflow {endpoints['airflow_url']}"] = airflow_health(endpoints["airflow_url"])
    return states, health


def format_uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"
