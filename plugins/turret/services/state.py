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


COMPONENT_NAMES = (
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "ingest-api",
    "dashboard",
)


def read_states(layout: Layout) -> list[ComponentState]:
    """Each component's pid file and whether its process lives; a pid file of a dead process is `stale`."""
    recorded = read_endpoints(layout).get("start_times", {})
    states = []
    for name in COMPONENT_NAMES:
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
