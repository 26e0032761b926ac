"""What `turret up` leaves on disk: pid files, logs and the record of its ports, and what they say now."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from turret.services import processes


@dataclass
class ComponentState:
    """A component as its pid file and its process say: running, or gone (a pid file left behind is stale)."""

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


# The components of every `up`; with TURRET_EXECUTOR=celery also REDIS (unless TURRET_BROKER_URL names
# another broker) and the Celery workers, named by celery_worker_name.
COMPONENT_NAMES = (
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "ingest-api",
    "dashboard",
)
REDIS = "redis"
_WORKER_PREFIX = "celery-worker-"


def celery_worker_name(index: int) -> str:
    """The component name of the ``index``-th (1-based) Celery worker."""
    return f"{_WORKER_PREFIX}{index}"


def component_names(layout: Layout) -> list[str]:
    """The fixed components, then the Celery ones this home has a trace of: named in the record `up`
    wrote, or with a pid file (so `status` and `down` see them even when the record is gone)."""
    recorded = read_endpoints(layout).get("start_times", {})
    extra = set(recorded) if isinstance(recorded, dict) else set()
    if layout.run_dir.is_dir():
        extra |= {p.stem for p in layout.run_dir.glob("*.pid")}
    extra = {n for n in extra if n == REDIS or n.startswith(_WORKER_PREFIX)}
    def number(name: str) -> int:
        tail = name[len(_WORKER_PREFIX):]
        return int(tail) if tail.isdigit() else 0

    workers = sorted((n for n in extra if n != REDIS), key=lambda n: (number(n), n))
    return [*COMPONENT_NAMES, *([REDIS] if REDIS in extra else []), *workers]


def read_states(layout: Layout) -> list[ComponentState]:
    """Each component's pid file and whether its process lives; a pid file of a dead process is `stale`."""
    recorded = read_endpoints(layout).get("start_times", {})
    states = []
    for name in component_names(layout):
        path = layout.pid_file(name)
        try:
            pid = int(path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pid = None
        if pid is None:
            states.append(ComponentState(name, None, False, stale=path.exists()))
        elif processes.is_session_leader_started_at(
            pid, recorded.get(name) if isinstance(recorded, dict) else None, layout.home
        ):
            states.append(ComponentState(name, pid, True, processes.uptime(pid)))
        else:
            processes.reap(pid)
            states.append(ComponentState(name, pid, False, stale=True))
    return states


def remove_stale(layout: Layout, states: list[ComponentState]) -> list[str]:
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
