"""Control plane: plans and periods, hashed API keys, rotation and revocation, quota leases (contention,
dead processes, refunds)."""

from __future__ import annotations

import os
import random
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from turret import controlplane
from turret.controlplane import (
    PLANS,
    ControlPlane,
    ControlPlaneError,
    Period,
    Project,
    QuotaGate,
    compute_period,
)


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'control.db'}"


@pytest.fixture
def cp(db_url) -> ControlPlane:
    plane = ControlPlane(db_url)
    yield plane
    plane.dispose()


def project(plan="pro", created=datetime(2025, 1, 10, 8, 0, tzinfo=UTC), monthly_limit=None) -> Project:
    return Project("00000000-0000-4000-8000-000000000000", "p", plan, monthly_limit, created)


# ---------------------------------------------------------------------------------------- plans, periods


def test_plans_and_limits():
    assert {name: plan.limit for name, plan in PLANS.items()} == {
        "trial": 250_000, "pro": 1_000_000, "business": 10_000_000, "enterprise": None,
    }
    assert project("business").limit() == 10_000_000
    assert project("pro", monthly_limit=42).limit() == 42
    assert project("enterprise", monthly_limit=5_000_000).limit() == 5_000_000


def test_trial_is_one_period_of_14_days_from_creation():
    created = datetime(2025, 1, 25, 15, 30, tzinfo=UTC)
    p = project("trial", created)
    inside = compute_period(p, created + timedelta(days=13, hours=23))
    assert inside == Period(created, created + timedelta(days=14), 250_000)
    # Crossing a month boundary does not reset a trial.
    assert compute_period(p, datetime(2025, 2, 1, tzinfo=UTC)) == inside
    after = compute_period(p, created + timedelta(days=14))
    assert after.limit == 0 and after.start == created + timedelta(days=14)
    assert after.end == datetime(2025, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "now, start, end",
    [
        (datetime(2025, 1, 31, 23, 59, 59, 999999, tzinfo=UTC),
         datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC)),
        (datetime(2025, 2, 1, tzinfo=UTC),
         datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC)),
        (datetime(2024, 2, 29, 12, tzinfo=UTC),
         datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)),
        (datetime(2025, 12, 31, 23, tzinfo=UTC),
         datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)),
        # 00:30 in Paris on 1 March is still February in UTC.
        (datetime(2025, 3, 1, 0, 30, tzinfo=__import__("zoneinfo").ZoneInfo("Europe/Paris")),
         datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC)),
    ],
)
def test_monthly_plans_use_calendar_months_in_utc(now, start, end):
    assert compute_period(project("pro"), now) == Period(start, end, 1_000_000)


# ------------------------------------------------------------------------------------------- projects


def test_create_list_get(cp):
    p, key = cp.create_project("Support bot", "pro")
    assert re.fullmatch(r"trt_[0-9A-Za-z]{40}", key)
    assert re.fullmatch(r"[0-9a-f-]{36}", p.project_id)
    assert p.created_at.tzinfo is not None
    q, _ = cp.create_project("Search", "enterprise", monthly_limit=3_000_000)
    assert [x.name for x in cp.list_projects()] == ["Support bot", "Search"]
    assert cp.get_project("Search") == q
    assert cp.get_project(q.project_id) == q
    assert cp.get_project("Search").limit() == 3_000_000


@pytest.mark.parametrize(
    "name, plan, limit, message",
    [
        ("x", "gold", None, "unknown plan 'gold'; choose one of: trial, pro, business, enterprise"),
        ("x", "enterprise", None, "plan 'enterprise' needs an explicit monthly limit"),
        ("x", "pro", 0, "monthly limit must be a positive integer"),
        ("x", "pro", -5, "monthly limit must be a positive integer"),
        ("  ", "pro", None, "project name must not be empty"),
        ("a\nb", "pro", None, "control characters"),
    ],
)
def test_create_rejects_bad_input(cp, name, plan, limit, message):
    with pytest.raises(ControlPlaneError, match=re.escape(message)):
        cp.create_project(name, plan, limit)
    assert cp.list_projects() == []


def test_duplicate_name_is_refused(cp):
    cp.create_project("demo", "trial")
    with pytest.raises(ControlPlaneError, match="a project named 'demo' already exists"):
        cp.create_project("demo", "pro")


def test_unknown_project(cp):
    with pytest.raises(ControlPlaneError, match="no project named 'nope'"):
        cp.get_project("nope")


def test_from_settings_creates_the_sqlite_directory(tmp_path):
    from turret.settings import Settings

    settings = Settings(home=tmp_path / "not" / "yet")
    plane = ControlPlane.from_settings(settings)
    plane.create_project("p", "pro")
    assert (tmp_path / "not" / "yet" / "control.db").exists()
    plane.dispose()


# ----------------------------------------------------------------------------------------------- keys


def test_raw_keys_are_nowhere_in_the_database_files(cp, tmp_path):
    keys = [cp.create_project(f"p{i}", "pro")[1] for i in range(3)]
    keys.append(cp.rotate_key("p0", keep_old=True))
    blob = b"".join(p.read_bytes() for p in tmp_path.glob("control.db*"))
    assert blob  # the files exist and hold the projects
    assert b"p0" in blob
    for key in keys:
        assert key.encode() not in blob
        assert key[4:].encode() not in blob  # not even the secret part without the prefix
        assert controlplane.hash_key(key).encode() in blob
    listed = cp.list_keys("p0")
    assert [set(k) for k in listed] == [{"prefix", "created_at", "revoked_at"}] * 2
    assert [k["prefix"] for k in listed] == [keys[0][:12], keys[3][:12]]


def test_authenticate(cp):
    p, key = cp.create_project("demo", "pro")
    assert cp.authenticate(key) == p
    near = key[:-1] + ("a" if key[-1] != "a" else "b")
    for wrong in (None, "", "trt_", near, key + "x", "Bearer " + key, 42):
        assert cp.authenticate(wrong) is None


def test_authenticate_compares_digests_on_every_path(cp, monkeypatch):
    _, key = cp.create_project("demo", "pro")
    calls = []
    real = controlplane.hmac.compare_digest

    def spy(a, b):
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(controlplane.hmac, "compare_digest", spy)
    for candidate in (key, "trt_" + "A" * 40, "garbage", None):
        calls.clear()
        cp.authenticate(candidate)
        # Always a comparison of two 64-character digests, whether the key exists, is wrong or malformed.
        assert calls and all(c == (64, 64) for c in calls), candidate


def test_answers_are_cached_positive_and_negative(cp, monkeypatch):
    _, key = cp.create_project("demo", "pro")
    lookups = []
    real = cp._lookup_key
    monkeypatch.setattr(cp, "_lookup_key", lambda digest: lookups.append(digest) or real(digest))
    wrong = "trt_" + "B" * 40
    for _ in range(5):
        assert cp.authenticate(key) is not None
        assert cp.authenticate(wrong) is None
    assert len(lookups) == 2


def test_rotation_and_revocation(cp):
    p, first = cp.create_project("demo", "pro")
    second = cp.rotate_key("demo")
    assert cp.authenticate(first) is None and cp.authenticate(second) == p
    third = cp.rotate_key("demo", keep_old=True)
    assert cp.authenticate(second) == p and cp.authenticate(third) == p
    cp.revoke_key(second[:12])
    assert cp.authenticate(second) is None and cp.authenticate(third) == p
    cp.revoke_key(third)  # the whole key works too
    assert cp.authenticate(third) is None
    keys = cp.list_keys("demo")
    assert len(keys) == 3 and all(k["revoked_at"] is not None for k in keys)
    with pytest.raises(ControlPlaneError, match="already revoked"):
        cp.revoke_key(third[:12])
    with pytest.raises(ControlPlaneError, match="no API key matches"):
        cp.revoke_key("trt_00000000")
    with pytest.raises(ControlPlaneError, match="give a key prefix like"):
        cp.revoke_key("abc")


def test_revocation_reaches_other_processes_within_the_cache_time(db_url):
    admin = ControlPlane(db_url)
    server = ControlPlane(db_url, key_cache_seconds=0.3)
    _, key = admin.create_project("demo", "pro")
    assert server.authenticate(key) is not None
    admin.rotate_key("demo")
    time.sleep(0.35)
    assert server.authenticate(key) is None


# ---------------------------------------------------------------------------------------------- quota


def test_block_size_is_small_relative_to_the_limit(cp):
    gate = QuotaGate(cp)
    limits = (1, 999, 2_000, 250_000, 1_000_000, 10_000_000)
    assert [gate.block_size(n) for n in limits] == [1, 1, 2, 250, 1000, 1000]
    assert QuotaGate(cp, lease_size=50).block_size(10) == 10


def test_partial_grant_at_the_end_of_the_quota(cp):
    p, _ = cp.create_project("small", "pro", monthly_limit=10)
    gate = QuotaGate(cp, lease_size=4)
    now = datetime(2025, 5, 20, tzinfo=UTC)
    first = gate.acquire(p, 7, now=now)
    assert (first.granted, first.limit, first.remaining) == (7, 10, 3)
    second = gate.acquire(p, 7, now=now)
    assert (second.granted, second.remaining) == (3, 0)
    third = gate.acquire(p, 1, now=now)
    assert (third.granted, third.remaining, third.reset_at) == (0, 0, datetime(2025, 6, 1, tzinfo=UTC))
    assert cp.usage(p, now=now) == 10


def test_release_returns_unused_leases(cp):
    p, _ = cp.create_project("demo", "pro", monthly_limit=100_000)
    gate = QuotaGate(cp)  # block of 100
    assert gate.acquire(p, 3).granted == 3
    assert cp.usage(p) == 100
    gate.release()
    assert cp.usage(p) == 3


def test_a_new_period_starts_from_zero_and_returns_the_old_lease(cp):
    p, _ = cp.create_project("demo", "pro", monthly_limit=10_000)
    gate = QuotaGate(cp)
    jan, feb = datetime(2025, 1, 31, 23, tzinfo=UTC), datetime(2025, 2, 1, 0, 1, tzinfo=UTC)
    assert gate.acquire(p, 1, now=jan).granted == 1
    assert gate.acquire(p, 2, now=feb).granted == 2
    assert cp.usage(p, now=jan) == 1
    assert cp.usage(p, now=feb) == 10


def test_expired_trial_grants_nothing(cp):
    p, _ = cp.create_project("demo", "trial")
    later = p.created_at + timedelta(days=15)
    decision = QuotaGate(cp).acquire(p, 1, now=later)
    assert (decision.granted, decision.limit) == (0, 0)


def test_quota_gates_never_over_grant_across_threads_and_two_control_planes(db_url):
    limit = 5_000
    planes = [ControlPlane(db_url), ControlPlane(db_url)]
    p, _ = planes[0].create_project("busy", "pro", monthly_limit=limit)
    gates = [QuotaGate(planes[0]), QuotaGate(planes[1])]  # blocks of 5 units
    granted = []
    lock = threading.Lock()

    def client(gate: QuotaGate, seed: int):
        rng = random.Random(seed)
        mine = 0
        while True:
            n = rng.randint(1, 3)
            got = gate.acquire(p, n).granted
            assert 0 <= got <= n
            mine += got
            if got < n:
                break
        with lock:
            granted.append(mine)

    threads = [threading.Thread(target=client, args=(gates[i % 2], i)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = sum(granted)
    assert total <= limit
    for gate in gates:
        gate.release()
    # Every unit counted in the database was handed out, and the whole quota was usable.
    assert planes[1].usage(p) == total
    assert total == limit


# ----------------------------------------------------------------------------- PostgreSQL (same SQL)

PG_BIN = Path("/usr/lib/postgresql/15/bin")
needs_postgres = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not (PG_BIN / "initdb").exists() and not shutil.which("initdb"), reason="no PostgreSQL"
    ),
]


def _as_postgres(*cmd: str) -> list[str]:
    # PostgreSQL refuses to run as root: drop to the postgres user when we are root.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)


@pytest.fixture(scope="module")
def pg_url():
    bin_dir = PG_BIN if (PG_BIN / "initdb").exists() else Path(shutil.which("initdb")).parent
    work = Path(tempfile.mkdtemp(prefix="turret-pg-"))
    if os.geteuid() == 0:
        shutil.chown(work, "postgres")
    data = work / "data"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(_as_postgres(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "turret"),
                   check=True, capture_output=True)
    opts = f"-p {port} -k {work} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(_as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(work / "log"),
                                "-w", "start"), check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://turret@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"),
                       capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


@needs_postgres[0]
@needs_postgres[1]
def test_projects_and_keys_on_postgres(pg_url):
    cp = ControlPlane(pg_url)
    project, key = cp.create_project("pg-demo", "enterprise", monthly_limit=1_234)
    assert cp.get_project("pg-demo") == project
    assert cp.authenticate(key) == project
    with pytest.raises(ControlPlaneError, match="already exists"):
        cp.create_project("pg-demo", "pro")
    new = cp.rotate_key("pg-demo")
    assert cp.authenticate(key) is None and cp.authenticate(new) == project
    assert len(cp.list_keys("pg-demo")) == 2
    cp.dispose()


@needs_postgres[0]
@needs_postgres[1]
def test_quota_never_over_grants_on_postgres(pg_url):
    limit = 3_000
    planes = [ControlPlane(pg_url), ControlPlane(pg_url)]
    project, _ = planes[0].create_project("pg-busy", "pro", monthly_limit=limit)
    gates = [QuotaGate(planes[0]), QuotaGate(planes[1])]
    totals = []

    def client(gate):
        mine = 0
        while (got := gate.acquire(project, 2).granted) == 2:
            mine += got
        totals.append(mine + got)

    threads = [threading.Thread(target=client, args=(gates[i % 2],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for gate in gates:
        gate.release()
    assert sum(totals) == limit
    assert planes[1].usage(project) == limit
    for plane in planes:
        plane.dispose()


# ------------------------------------------------------------------------------------- plans and leases

_HOLDER = """
import sys, time
from turret.controlplane import ControlPlane, QuotaGate
plane = ControlPlane(sys.argv[1])
gate = QuotaGate(plane, lease_size=100)
assert gate.acquire(plane.get_project("demo"), 3).granted == 3
print("leased", flush=True)
time.sleep(600)
"""


def test_leases_of_a_killed_process_come_back(cp, db_url):
    import signal
    import subprocess
    import sys

    p, _ = cp.create_project("demo", "pro", monthly_limit=100_000)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, db_url], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "leased"
        assert (cp.usage(p), cp.accepted(p)) == (100, 3)
        assert cp.reclaim_dead_leases() == 0  # alive: its lease is its own
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert cp.reclaim_dead_leases() == 97
    assert (cp.usage(p), cp.accepted(p)) == (3, 3)
    assert cp.reclaim_dead_leases() == 0  # given back once
    # A new server reclaims on its own before its first lease.
    gate = QuotaGate(cp, lease_size=10)
    assert gate.acquire(p, 1).granted == 1 and cp.accepted(p) == 4


def test_leases_of_another_host_expire_after_an_hour(cp):
    from turret.controlplane import LEASE_EXPIRY, leases_table

    p, _ = cp.create_project("demo", "pro", monthly_limit=100_000)
    gate = QuotaGate(cp, lease_size=50)
    gate.acquire(p, 10)
    with cp.engine.begin() as con:
        con.execute(leases_table.update().values(host="elsewhere"))
    assert cp.reclaim_dead_leases() == 0
    assert cp.reclaim_dead_leases(now=datetime.now(UTC) + LEASE_EXPIRY + timedelta(seconds=1)) == 40
    # The gate finds its lease gone at its next sync and reserves afresh instead of using given-back units.
    gate._leases[p.project_id].synced_at = 0.0
    gate.acquire(p, 1)
    assert cp.usage(p) == 10 and gate._leases[p.project_id].units == 0
    assert gate.acquire(p, 1).granted == 1 and cp.usage(p) == 60


def test_accepted_counts_events_not_reserved_blocks_and_refunds_come_back(cp):
    p, _ = cp.create_project("demo", "pro", monthly_limit=100_000)
    gate = QuotaGate(cp)  # block of 100
    assert gate.acquire(p, 451).granted == 451
    assert (cp.usage(p), cp.accepted(p)) == (451, 451)
    assert gate.acquire(p, 5).granted == 5
    assert (cp.usage(p), cp.accepted(p)) == (551, 456)
    gate.refund(p.project_id, 5)  # five of them were not stored after all
    assert (cp.usage(p), cp.accepted(p)) == (551, 451)
    gate.release()
    assert (cp.usage(p), cp.accepted(p)) == (451, 451)


def test_set_plan_changes_what_the_gate_enforces(cp):
    p, _ = cp.create_project("demo", "trial")
    later = datetime.now(UTC) + timedelta(days=15)
    gate = QuotaGate(cp)
    assert gate.acquire(p, 1, now=later).granted == 0  # the trial is over
    cp.set_plan("demo", "pro")
    with pytest.raises(ControlPlaneError, match="a trial cannot be restarted"):
        cp.set_plan("demo", "trial")
    upgraded = cp.get_project("demo")
    assert upgraded.plan == "pro" and upgraded.plan_changed_at is not None
    assert gate.acquire(upgraded, 2).granted == 2
    limited = cp.set_plan(upgraded.project_id, "pro", monthly_limit=3)
    assert limited.plan_changed_at == upgraded.plan_changed_at  # same plan: same period
    assert gate.acquire(limited, 5).granted == 1  # 2 of 3 used in this period already
    with pytest.raises(ControlPlaneError, match="looks like a project id"):
        cp.create_project(p.project_id, "pro")


def test_an_old_control_plane_gains_the_plan_change_column(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.execute("create table projects (project_id varchar(36) primary key, name varchar(200) not null "
                "unique, plan varchar(32) not null, monthly_limit bigint, created_at datetime not null)")
    con.execute("insert into projects values ('00000000-0000-4000-8000-000000000001', 'old', 'pro', null, "
                "'2025-01-01 00:00:00')")
    con.commit()
    con.close()
    plane = ControlPlane(f"sqlite:///{path}")
    try:
        assert plane.get_project("old").plan_changed_at is None
        assert plane.set_plan("old", "business").plan_changed_at is not None
    finally:
        plane.dispose()
