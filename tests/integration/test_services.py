"""``turret up`` / ``status`` / ``down``: the whole product on one machine, as real detached processes.

The slow test starts the real thing (gunicorn, Airflow's API server, scheduler, DAG processor, triggerer) in a
temporary TURRET_HOME on free ports, talks to it over HTTP, and checks that ``down`` leaves no process of any
component's session behind and no landing segment open. The fast tests cover refusals and idempotence
without starting anything.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests
from turret import services


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def turret_command() -> list[str]:
    script = Path(sys.executable).parent / "turret"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from turret.cli import main; main()"]


def turret(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*turret_command(), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def env(turret_home) -> dict[str, str]:
    """The caller's environment with this test's TURRET_HOME and none of the caller's Airflow settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TURRET_", "AIRFLOW"))}
    env["TURRET_HOME"] = str(turret_home)
    return env


def _in_sessions(pid: int, sids: set[int]) -> bool:
    try:
        return os.getsid(pid) in sids
    except OSError:
        return False


def session_members(sids: set[int]) -> list[tuple[int, str]]:
    """Live processes whose session is one of ``sids``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = raw[raw.rfind(")") + 2:].split()
        if fields[0] not in ("Z", "X") and int(fields[3]) in sids:
            found.append((int(entry.name), cmd))
    return found


def processes_pointing_at(home: Path) -> list[tuple[int, str]]:
    """Live processes (other than this test and its ancestors) whose environment or command line names
    ``home``: an independent check that nothing of the product outlived `down`."""
    skip, pid = set(), os.getpid()
    while pid > 1:
        skip.add(pid)
        raw = Path(f"/proc/{pid}/stat").read_text()
        pid = int(raw[raw.rfind(")") + 2:].split()[1])
    needle = str(home).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        try:
            raw = (entry / "stat").read_text()
            environ = (entry / "environ").read_bytes()
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if raw[raw.rfind(")") + 2:].split()[0] in ("Z", "X"):
            continue
        if needle in environ or needle in cmd:
            found.append((int(entry.name), cmd.replace(b"\0", b" ").decode(errors="replace")))
    return found


# --------------------------------------------------------------------------------------------------------
# Fast: refusals and idempotence, nothing started.


def test_down_when_nothing_runs_says_so_and_exits_0(env, turret_home):
    out = turret(env, "down")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "not running" in out.stdout
    out = turret(env, "down")
    assert out.returncode == 0 and "not running" in out.stdout


def test_status_when_stopped_exits_3_and_says_how_to_start(env):
    out = turret(env, "status")
    assert out.returncode == 3, out.stdout + out.stderr
    assert "stopped" in out.stdout and "make up" in out.stdout


def test_status_json_lists_every_component(env):
    out = turret(env, "status", "--json")
    assert out.returncode == 3
    data = json.loads(out.stdout)
    assert [c["name"] for c in data["components"]] == list(services.COMPONENT_NAMES)
    assert not any(c["running"] for c in data["components"]) and data["health"] == {}


def test_relative_turret_home_is_made_absolute(turret_home, monkeypatch):
    monkeypatch.chdir(turret_home.parent)
    from turret.settings import Settings

    settings = services.absolute_settings(Settings(home=Path(turret_home.name), landing_dir="land"))
    assert settings.home == turret_home.resolve()
    assert settings.landing_root == (turret_home.parent / "land").resolve()


def test_stale_pid_files_of_dead_processes_are_cleaned(env, turret_home):
    dead = subprocess.Popen(["true"])
    dead.wait()
    run = turret_home / "run"
    run.mkdir()
    (run / "ingest-api.pid").write_text(f"{dead.pid}\n")
    (run / "airflow-scheduler.pid").write_text("not a pid\n")
    out = turret(env, "status")
    assert out.returncode == 3
    assert "stale pid file" in out.stdout
    out = turret(env, "down")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "stale" in out.stdout
    assert not list(run.glob("*.pid"))


def test_a_pid_reused_by_another_program_is_not_taken_for_a_component(env, turret_home):
    # This very test process is alive, but it was not started by `up`: it must read as stale, never be killed.
    run = turret_home / "run"
    run.mkdir()
    (run / "airflow-api-server.pid").write_text(f"{os.getpid()}\n")
    states = {s.name: s for s in services.read_states(services.Layout(turret_home))}
    assert not states["airflow-api-server"].running and states["airflow-api-server"].stale
    out = turret(env, "down")
    assert out.returncode == 0, out.stdout + out.stderr


def test_leftover_processes_block_up_and_are_stopped_by_down(env, turret_home):
    # A child that outlived its component (say the API server's master died): marked by the environment
    # every component passes on, in a session of its own.
    orphan = subprocess.Popen(["sleep", "120"], start_new_session=True,
                              env={**env, services.MARKER_ENV: str(turret_home.resolve())})
    try:
        out = turret(env, "up", "--api-port", str(free_port()), "--airflow-port", str(free_port()))
        assert out.returncode == 1
        assert f"pid {orphan.pid}" in out.stderr and "turret down" in out.stderr
        out = turret(env, "down")
        assert out.returncode == 0, out.stdout + out.stderr
        assert f"pid {orphan.pid}" in out.stdout
        assert orphan.wait(timeout=15) == -15  # SIGTERM
    finally:
        orphan.kill()
        orphan.wait()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--api-port", "18080", "--airflow-port", "18080"], "must differ"),
        (["--api-port", "18081", "--airflow-port", "18082", "--ui-port", "18081"], "must differ"),
        (["--api-port", "0"], "1<=x<=65535"),
        (["--host", " "], "not a host"),
        (["--timeout", "0"], "--timeout"),
    ],
)
def test_up_rejects_bad_options_clearly(env, args, message):
    out = turret(env, "up", *args)
    assert out.returncode != 0
    assert message in out.stdout + out.stderr
    assert "Traceback" not in out.stderr


def test_up_refuses_a_port_in_use_before_starting_anything(env, turret_home):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = turret(env, "up", "--api-port", str(port), "--airflow-port", str(free_port()))
    assert out.returncode == 1
    assert f"port {port} (--api-port)" in out.stderr and "in use" in out.stderr
    assert not (turret_home / "run").exists() or not list((turret_home / "run").glob("*.pid"))


def test_celery_mode_adds_the_broker_and_the_workers(turret_home, monkeypatch):
    from turret.settings import Settings

    # Airflow's own variables, where a caller sets them, win over TURRET_EXECUTOR (airflow_environment): here
    # none is set, whatever an earlier test of this process left in the environment.
    for name in [n for n in os.environ if n.startswith(("AIRFLOW__CORE__EXECUTOR", "AIRFLOW__CELERY__",
                                                          "AIRFLOW__OPERATORS__DEFAULT_QUEUE"))]:
        monkeypatch.delenv(name)

    local = services.components(Settings(home=turret_home), api_port=1, airflow_port=2, host="127.0.0.1")
    assert [c.name for c in local] == ["airflow-api-server", "airflow-scheduler", "airflow-dag-processor",
                                       "airflow-triggerer", "ingest-api", "dashboard"]
    assert local[0].env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    settings = Settings(home=turret_home, executor="celery", celery_workers=3, redis_port=6499)
    comps = services.components(settings, api_port=1, airflow_port=2, host="127.0.0.1")
    names = [c.name for c in comps]
    assert names[:3] == ["redis", "airflow-api-server", "airflow-scheduler"]
    assert names[3:6] == ["celery-worker-1", "celery-worker-2", "celery-worker-3"]
    redis = comps[0].argv
    assert redis[redis.index("--bind") + 1] == "127.0.0.1" and redis[redis.index("--port") + 1] == "6499"
    assert redis[redis.index("--dir") + 1] == str(turret_home / "redis")
    worker = comps[3].argv
    assert worker[1:3] == ["celery", "worker"]
    assert worker[worker.index("--queues") + 1] == "default,turret_warehouse"
    assert worker[worker.index("--concurrency") + 1] == "1"
    assert len({c.argv[c.argv.index("--celery-hostname") + 1] for c in comps[3:6]}) == 3
    env = comps[0].env
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6499/0"
    # A broker of the caller's: none is started, the workers use it.
    own = Settings(home=turret_home, executor="celery", broker_url="redis://broker:6379/1")
    comps = services.components(own, api_port=1, airflow_port=2, host="127.0.0.1")
    assert "redis" not in [c.name for c in comps]
    assert comps[0].env["AIRFLOW__CELERY__BROKER_URL"] == "redis://broker:6379/1"


def test_status_and_down_see_the_celery_components_by_their_pid_files(env, turret_home):
    dead = subprocess.Popen(["true"])
    dead.wait()
    run = turret_home / "run"
    run.mkdir()
    for name in ("redis", "celery-worker-2", "celery-worker-10", "celery-worker-1"):
        (run / f"{name}.pid").write_text(f"{dead.pid}\n")
    layout = services.Layout(turret_home)
    assert services.component_names(layout)[6:] == ["redis", "celery-worker-1", "celery-worker-2",
                                                     "celery-worker-10"]
    out = turret(env, "status", "--json")
    assert out.returncode == 3
    assert "celery-worker-10" in [c["name"] for c in json.loads(out.stdout)["components"]]
    out = turret(env, "down")
    assert out.returncode == 0, out.stdout + out.stderr
    assert not list(run.glob("*.pid"))


@pytest.mark.parametrize("variable, value, message", [
    ("TURRET_EXECUTOR", "kubernetes", "local, celery"),
    ("TURRET_CELERY_WORKERS", "0", "Celery worker processes"),
    ("TURRET_WAREHOUSE_QUEUE", "a,b", "queue name"),
])
def test_bad_executor_settings_are_refused_clearly(env, variable, value, message):
    out = turret({**env, variable: value}, "up")
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


def test_celery_mode_without_redis_says_how_to_get_it(turret_home, monkeypatch):
    from turret.settings import Settings

    monkeypatch.setattr(services.lifecycle, "redis_server_bin", lambda: None)
    with pytest.raises(services.ServiceError, match="make system-deps"):
        services.components(Settings(home=turret_home, executor="celery"), api_port=1, airflow_port=2,
                            host="127.0.0.1")


# --------------------------------------------------------------------------------------------------------
# Slow: the real thing.


@pytest.mark.slow
def test_up_status_track_down_leaves_nothing_running(env, turret_home):
    api_port, airflow_port, ui_port = free_port(), free_port(), free_port()
    api_url, airflow_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{airflow_port}"
    ui_url = f"http://127.0.0.1:{ui_port}"
    layout = services.Layout(turret_home)
    try:
        up = turret(env, "up", "--api-port", str(api_port), "--airflow-port", str(airflow_port),
                    "--ui-port", str(ui_port), "--timeout", "240", timeout=400)
        assert up.returncode == 0, up.stdout + up.stderr
        assert api_url in up.stdout and airflow_url in up.stdout and ui_url in up.stdout
        assert "simple_auth_manager_passwords.json.generated" in up.stdout and "make down" in up.stdout
        sids = {int(layout.pid_file(n).read_text()) for n in services.COMPONENT_NAMES}
        assert len(sids) == len(services.COMPONENT_NAMES) == 6

        # The APIs answer; the dashboard shows nothing without its sign-in (password printed once by `up`).
        assert requests.get(api_url + "/healthz", timeout=5).status_code == 200
        assert requests.get(ui_url + "/healthz", timeout=5).status_code == 200
        assert requests.get(ui_url + "/", timeout=5, allow_redirects=False).status_code == 302
        password = (turret_home / "ui_password").read_text().strip()
        assert f"Dashboard:    {ui_url}" in up.stdout and password in up.stdout
        health = requests.get(airflow_url + services.AIRFLOW_HEALTH_PATH, timeout=5)
        assert health.status_code == 200 and health.json()["metadatabase"]["status"] == "healthy"

        # A second `up` refuses while this one runs.
        again = turret(env, "up", "--api-port", str(free_port()), "--airflow-port", str(free_port()),
                       "--ui-port", str(free_port()))
        assert again.returncode == 1 and "already running" in again.stderr

        # The DAG processor registers turret_hourly, unpaused (scheduled hourly), seen through the REST API
        # with the SimpleAuthManager's admin password.
        password = json.loads(
            (turret_home / "airflow" / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
        token = requests.post(airflow_url + "/auth/token", json={"username": "admin", "password": password},
                              timeout=10)
        assert token.status_code in (200, 201), token.text
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        deadline, dag = time.monotonic() + 150, None
        while time.monotonic() < deadline:
            resp = requests.get(airflow_url + "/api/v2/dags/turret_hourly", headers=headers, timeout=10)
            if resp.status_code == 200:
                dag = resp.json()
                break
            assert resp.status_code == 404, resp.text
            time.sleep(2)
        assert dag is not None, "turret_hourly was not registered:\n" + \
            "\n".join(layout.log_file("airflow-dag-processor").read_text().splitlines()[-30:])
        assert dag["is_paused"] is False

        # Only the three documented ports listen, on the host `up` was given (127.0.0.1 by default): no
        # scheduler health server on 0.0.0.0:8974, no log servers (docs/operations.md).
        listening = {
            (c.laddr.ip, c.laddr.port)
            for c in psutil.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.pid is not None and _in_sessions(c.pid, sids)
        }
        assert {port for _, port in listening} == {api_port, airflow_port, ui_port}, listening
        assert {ip for ip, _ in listening} == {"127.0.0.1"}, listening

        status = turret(env, "status")
        assert status.returncode == 0, status.stdout + status.stderr
        for name in services.COMPONENT_NAMES:
            assert f"{name}" in status.stdout
        assert status.stdout.count(" running ") == 6 and "stopped" not in status.stdout
        assert "ingest API" in status.stdout and "ok (healthy)" in status.stdout

        # One event through the real ingest API, with a key from `turret projects create`.
        created = turret(env, "projects", "create", "services-test", "--plan", "pro")
        assert created.returncode == 0, created.stdout + created.stderr
        key = created.stdout.strip().splitlines()[-1]
        resp = requests.post(api_url + "/track", headers={"X-API-Key": key}, timeout=10,
                             json={"name": "prompt", "metadata": {"prompt": "how do I export my data?"}})
        assert resp.status_code in (200, 201, 202), resp.text
        assert list((turret_home / "landing").rglob("*.jsonl.open")), "the API should hold an open segment"
    finally:
        down = turret(env, "down", timeout=200)

    assert down.returncode == 0, down.stdout + down.stderr
    assert session_members(sids) == []
    assert services.leftover_processes(turret_home, sessions=sids) == []
    assert processes_pointing_at(turret_home) == []
    assert not list((turret_home / "landing").rglob("*.jsonl.open"))
    sealed = list((turret_home / "landing").rglob("*.jsonl"))
    assert any("how do I export my data?" in p.read_text() for p in sealed)
    assert not list(layout.run_dir.glob("*.pid"))
    for name in services.COMPONENT_NAMES:
        assert layout.log_file(name).stat().st_size > 0

    again = turret(env, "down")
    assert again.returncode == 0 and "not running" in again.stdout
