"""The processes of `turret up`, seen through psutil: alive, which session, started when, marked how.

Every component is started as the leader of its own session, and every component and child inherits
``TURRET_SERVICES_HOME=<home>`` (``MARKER_ENV``): `down` finds a component's processes by its session id,
and stragglers that left it by that variable.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

import psutil

# Marks every process started by `turret up`, and (by inheritance) every child of one, with the home it
# belongs to: how `down` finds stragglers that left their process group (e.g. task processes).
MARKER_ENV = "TURRET_SERVICES_HOME"
_GONE = (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    proc = _process(pid)
    try:
        return proc is not None and proc.status() not in _GONE
    except psutil.Error:
        return False


def session_id(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def environ(pid: int) -> dict[str, str]:
    proc = _process(pid)
    try:
        return proc.environ() if proc is not None else {}
    except psutil.Error:
        return {}


def cmdline(pid: int) -> str:
    proc = _process(pid)
    try:
        return " ".join(proc.cmdline()).strip() if proc is not None else ""
    except psutil.Error:
        return ""


def start_time(pid: int) -> float | None:
    """When the process started (seconds since the epoch): with the pid, it names one process for good."""
    proc = _process(pid)
    try:
        return proc.create_time() if proc is not None else None
    except psutil.Error:
        return None


def uptime(pid: int) -> float | None:
    started = start_time(pid)
    return None if started is None else max(0.0, time.time() - started)


def is_session_leader_started_at(pid: int, started: float | None, home: Path) -> bool:
    """Whether ``pid`` is still the process `up` started (not a reused pid): alive, leader of its own
    session, and started at the recorded time. (Its environment cannot tell when no time was recorded:
    gunicorn and Airflow's API server rewrite their process title over it.)"""
    if not alive(pid) or session_id(pid) != pid:
        return False
    if started is not None:
        return start_time(pid) == started
    return environ(pid).get(MARKER_ENV) == str(home)


def reap(pid: int) -> None:
    # When `up` ran in this very process (tests, library use), its children must be reaped or they linger
    # as zombies; elsewhere they were re-parented to init and this is a no-op.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def session_members(sid: int) -> list[int]:
    """Live processes of session ``sid``: a component and all its children, including those that moved to
    a process group of their own (Airflow runs each task in its own group)."""
    return [pid for pid in psutil.pids() if session_id(pid) == sid and alive(pid)]


def leftover_processes(home: Path | str, *, sessions: Iterable[int] = (),
                       exclude: Iterable[int] = ()) -> list[tuple[int, str]]:
    """Live processes of this home's services: in one of ``sessions`` (those `up` started) or carrying
    ``TURRET_SERVICES_HOME=<home>`` in their environment. The caller and its ancestors are never listed.

    A command line that merely names the home (someone's ``tail -f`` of a log) does not count: `down` stops
    what it lists."""
    marker = str(Path(home).resolve())
    sessions = set(sessions)
    skip = set(exclude) | ancestors()
    found = []
    for pid in psutil.pids():
        if pid in skip or not alive(pid):
            continue
        if session_id(pid) in sessions or environ(pid).get(MARKER_ENV) == marker:
            found.append((pid, cmdline(pid)))
    return found


def ancestors() -> set[int]:
    """This process and its parents up to (not including) init."""
    me = psutil.Process()
    return {p.pid for p in [me, *me.parents()] if p.pid > 1}


def signal_group(pgid: int, sig: int = signal.SIGTERM) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def send_signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        for p in pids:
            reap(p)
        time.sleep(0.2)
