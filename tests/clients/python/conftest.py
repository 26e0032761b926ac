"""A real ``turret serve`` for the Python client's tests, and the landing store read back.

The server helpers (``ServeProcess``, ``turret``, ``turret_env``) are the durability test's, loaded by path
as tests/integration/test_quota_concurrency.py does, so every server-level test starts Turret one way.
"""

from __future__ import annotations

import collections
import importlib.util
import time
from pathlib import Path
from unittest import mock

import pytest
import requests

pytest.importorskip("ingest_api")

from turret import landing  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "_durability_helpers", Path(__file__).parents[2] / "integration" / "test_durability.py"
)
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)
ServeProcess, turret, turret_env, free_port = (
    _helpers.ServeProcess, _helpers.turret, _helpers.turret_env, _helpers.free_port,
)


class Serve(ServeProcess):
    """``ServeProcess`` that keeps polling when a health check times out (a busy machine), not only when
    the connection is refused."""

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = self.log.read_text()
                raise AssertionError(f"turret serve exited with {self.proc.returncode}:\n{log}")
            try:
                if requests.get(self.url + "/healthz", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.kill()
        raise AssertionError(f"turret serve did not answer within {timeout} s:\n{self.log.read_text()}")


class Turret:
    """One TURRET_HOME with a project, and its ``turret serve`` (restartable on the same port)."""

    def __init__(self, tmp_path: Path, *create_args: str) -> None:
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.home = tmp_path / "home"
        self.env = turret_env(self.home)
        args = create_args or ("--plan", "business")
        self.key = turret(self.env, "projects", "create", "sdk-tests", *args).strip().splitlines()[-1]
        self.log = tmp_path / "serve.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: Serve | None = None

    def start(self, workers: int = 2, threads: int = 4) -> Turret:
        with mock.patch.object(_helpers, "free_port", return_value=self.port):
            self.server = Serve(self.env, self.log, workers=workers, threads=threads)
        return self

    def kill(self) -> None:
        self.server.kill()
        self.server = None

    def stop(self) -> None:
        if self.server is not None:
            assert self.server.terminate() == 0, self.log.read_text()
            self.server = None

    def landed(self) -> collections.Counter:
        """How many times each ``event_id`` is in the landing store (sealed and open segments)."""
        root = self.home / "landing"
        seen: collections.Counter = collections.Counter()
        segments = [*landing.iter_sealed_segments(root), *landing.iter_open_segments(root)]
        for segment in segments:
            for line in landing.read_segment(segment):
                if line.record is not None:
                    seen[line.record["event_id"]] += 1
        return seen

    def records(self) -> dict[str, dict]:
        root = self.home / "landing"
        out = {}
        for segment in [*landing.iter_sealed_segments(root), *landing.iter_open_segments(root)]:
            for line in landing.read_segment(segment):
                if line.record is not None:
                    out.setdefault(line.record["event_id"], line.record)
        return out


@pytest.fixture
def make_turret(tmp_path):
    """Factory: a project (``turret projects create`` arguments) and its server; stopped at teardown."""
    made: list[Turret] = []

    def factory(*create_args: str, start: bool = True) -> Turret:
        t = Turret(tmp_path / f"t{len(made)}", *create_args)
        made.append(t)
        return t.start() if start else t

    yield factory
    for t in made:
        if t.server is not None:
            t.server.kill()


@pytest.fixture(scope="module")
def shared_turret(tmp_path_factory):
    """One server for the tests that only read their own events back."""
    t = Turret(tmp_path_factory.mktemp("shared")).start()
    yield t
    if t.server is not None:
        t.server.kill()
