"""The control plane: projects, API keys, plans and quotas, in SQLite (default) or PostgreSQL.

SQLAlchemy 2 Core with portable SQL only (conditional ``UPDATE ... RETURNING``, plain ``INSERT``), so the same
code runs on ``sqlite:///<home>/control.db`` (WAL, busy timeout: several gunicorn processes share the file)
and on ``postgresql+psycopg://...``.

API keys are ``trt_`` + 40 base62 characters. Only their SHA-256 (hex) and a short display prefix are
stored. :meth:`ControlPlane.authenticate` caches positive and negative answers for ``key_cache_seconds``
in each process, so a rotated or revoked key stops working in other processes within that time (at once in
the process that revoked it).

Quotas (:class:`QuotaGate`) are leased from the database in small blocks so the count is shared by every
server process without a database write per event: docs/adr/0003-quota-leases.md.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import socket
import string
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from turret import plans
from turret.filemodes import private_dir, private_file
from turret.plans import PLANS, Period, Plan

KEY_PREFIX = "trt_"
KEY_BODY_LENGTH = 40
KEY_DISPLAY_LENGTH = 12  # "trt_" + 8 characters: enough to tell keys apart, useless for guessing.
_BASE62 = string.digits + string.ascii_letters
# Bound the per-process authentication cache so random wrong keys cannot grow it without limit.
KEY_CACHE_MAX_ENTRIES = 10_000
# How long a process trusts "this project's quota is used up" before asking the database again.
EXHAUSTED_RECHECK_SECONDS = 1.0
MAX_LEASE = 1000
SQLITE_BUSY_TIMEOUT_MS = 30_000
# A busy server records how much of its lease is left at least this often (events accepted = used - unused).
LEASE_SYNC_SECONDS = 1.0
# How often a server looks for leases of dead processes to give back (and once before its first lease).
LEASE_RECLAIM_SECONDS = 30.0
# A lease of another host not synced for this long is taken as dead.
LEASE_EXPIRY = timedelta(hours=1)

log = logging.getLogger(__name__)


class ControlPlaneError(ValueError):
    """A control-plane request that cannot be done; the message says why in the user's terms."""


# ------------------------------------------------------------------------------------------------- plans
# The rules live in turret.plans (one owner, also exported to the warehouse for the quota mart).


@dataclass(frozen=True)
class Project:
    """A project: the unit that owns API keys, a plan and a quota."""

    project_id: str
    name: str
    plan: str
    monthly_limit: int | None
    created_at: datetime
    # When the plan last changed (``turret projects set-plan``); None: the plan it was created with.
    plan_changed_at: datetime | None = None

    @property
    def plan_started_at(self) -> datetime:
        """When the current plan began: its last change, else the project's creation."""
        return self.plan_changed_at or self.created_at

    def limit(self) -> int:
        """Events allowed per period: the explicit override, else the plan's limit."""
        try:
            return plans.effective_limit(self.plan, self.monthly_limit)
        except plans.PlanError:
            raise ControlPlaneError(
                f"project {self.name!r} is on plan {self.plan!r} but has no monthly limit"
            ) from None


@dataclass(frozen=True)
class QuotaDecision:
    """Answer of :meth:`QuotaGate.acquire`: ``granted`` of the asked units (0..n)."""

    granted: int
    limit: int
    remaining: int
    reset_at: datetime


def compute_period(project: Project, now: datetime) -> Period:
    """The quota period of ``project`` containing ``now`` (the rules: :mod:`turret.plans`)."""
    try:
        return plans.compute_period(
            project.plan, project.monthly_limit, project.plan_started_at, now,
            plan_changed=project.plan_changed_at is not None,
        )
    except plans.PlanError:
        project.limit()  # raises the project-worded error
        raise


@dataclass(frozen=True)
class LeaseOwner:
    """The server process holding a lease: host, pid and the pid's start time (pids are reused)."""

    host: str
    pid: int
    started: float

    @classmethod
    def current(cls) -> LeaseOwner:
        import psutil

        me = psutil.Process()
        return cls(socket.gethostname(), me.pid, me.create_time())

    def is_alive(self) -> bool:
        """Whether the process still runs (only answerable on its own host; elsewhere: True)."""
        import psutil

        if self.host != socket.gethostname():
            return True
        try:
            return abs(psutil.Process(self.pid).create_time() - self.started) < 0.01
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return False
        except psutil.AccessDenied:
            return True


@dataclass(frozen=True)
class LeaseTicket:
    """A reservation made for a lease: the row to write and what the lease holds around it."""

    lease_id: str
    owner: LeaseOwner
    unused_before: int  # units the lease held before this reservation
    missing: int  # units of the reservation handed out at once

    def unused_after(self, reserved: int) -> int:
        return self.unused_before + reserved - min(self.missing, reserved)


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _naive(dt: datetime) -> datetime:
    # Stored as naive UTC: SQLite has no time zones and this keeps both backends identical.
    return _aware(dt).replace(tzinfo=None)


# ------------------------------------------------------------------------------------------------ schema

metadata = sa.MetaData()

projects_table = sa.Table(
    "projects",
    metadata,
    sa.Column("project_id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("plan", sa.String(32), nullable=False),
    sa.Column("monthly_limit", sa.BigInteger, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("plan_changed_at", sa.DateTime, nullable=True),
)

api_keys_table = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_hash", sa.String(64), primary_key=True),
    sa.Column("prefix", sa.String(16), nullable=False, index=True),
    sa.Column("project_id", sa.String(36), sa.ForeignKey("projects.project_id"), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime, nullable=True),
)

# One row per project and quota period; ``used`` counts units handed to server processes (leases).
usage_table = sa.Table(
    "usage",
    metadata,
    sa.Column("project_id", sa.String(36), sa.ForeignKey("projects.project_id"), primary_key=True),
    sa.Column("period_start", sa.DateTime, primary_key=True),
    sa.Column("used", sa.BigInteger, nullable=False),
)

# One row per live lease: units a server process reserved into ``usage.used`` and has not handed out yet
# (as of ``updated_at``; synced at least every LEASE_SYNC_SECONDS while the process is busy). Events accepted
# = used - unused of the period's leases; the leases of a process that died without giving them back are
# reclaimed from here (:meth:`ControlPlane.reclaim_dead_leases`).
leases_table = sa.Table(
    "quota_leases",
    metadata,
    sa.Column("lease_id", sa.String(32), primary_key=True),
    sa.Column("project_id", sa.String(36), sa.ForeignKey("projects.project_id"), nullable=False, index=True),
    sa.Column("period_start", sa.DateTime, nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("pid_started", sa.Float, nullable=False),
    sa.Column("unused", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)


def hash_key(api_key: str) -> str:
    """SHA-256 hex of an API key: the only form in which keys are stored."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def generate_key() -> str:
    """A new API key: ``trt_`` + 40 base62 characters (~238 bits) from ``secrets``."""
    return KEY_PREFIX + "".join(secrets.choice(_BASE62) for _ in range(KEY_BODY_LENGTH))


# A hash no key has (not hex): compared against when a key is unknown, so both paths run compare_digest.
_NO_HASH = "x" * 64


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _valid_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ControlPlaneError("project name must not be empty")
    name = name.strip()
    if len(name) > 200:
        raise ControlPlaneError("project name is longer than 200 characters")
    if any(ord(c) < 32 for c in name):
        raise ControlPlaneError("project name must not contain control characters")
    if _is_uuid(name):
        # A UUID always means a project id (as TR-Dataset does), so a name must never look like one.
        raise ControlPlaneError(f"project name {name!r} looks like a project id (a UUID); choose another")
    return name


def _check_plan(plan: str, monthly_limit: int | None) -> None:
    try:
        plans.check_plan(plan, monthly_limit)
    except plans.PlanError as exc:
        raise ControlPlaneError(str(exc)) from None


class ControlPlane:
    """Projects, keys, plans and usage over one SQLAlchemy URL. Safe to share between threads."""

    def __init__(self, url: str, *, key_cache_seconds: float = 5.0) -> None:
        self.url = url
        self.key_cache_seconds = float(key_cache_seconds)
        self.engine = _make_engine(url)
        self._key_cache: dict[str, tuple[float, Project | None]] = {}
        self._cache_lock = threading.Lock()
        self._create_tables()

    @classmethod
    def from_settings(cls, settings: Any) -> ControlPlane:
        """The control plane of ``settings`` (``control_url``); creates the home directory for SQLite."""
        url = settings.control_url
        database = sa.engine.make_url(url).database if url.startswith("sqlite") else None
        if database == ":memory:":
            database = None
        if database:
            private_dir(Path(database).parent)
        plane = cls(url, key_cache_seconds=getattr(settings, "key_cache_seconds", 5.0))
        if database:
            # SQLite creates the file (and its journals) with the umask's mode; API key hashes are private.
            private_file(database, f"{database}-journal", f"{database}-wal", f"{database}-shm")
        return plane

    def _create_tables(self) -> None:
        # Several gunicorn workers may start at once: a lost race to CREATE TABLE is fine if the table exists.
        for attempt in range(3):
            try:
                metadata.create_all(self.engine)
                self._add_missing_columns()
                return
            except (OperationalError, ProgrammingError, IntegrityError):
                if attempt == 2:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def _add_missing_columns(self) -> None:
        """Columns added after a control plane was first created (``plan_changed_at``)."""
        present = {c["name"] for c in sa.inspect(self.engine).get_columns("projects")}
        if "plan_changed_at" not in present:
            with self.engine.begin() as con:
                con.execute(sa.text("ALTER TABLE projects ADD COLUMN plan_changed_at TIMESTAMP"))

    def dispose(self) -> None:
        """Close pooled connections (before a fork, at shutdown)."""
        self.engine.dispose()

    # ---- projects

    def create_project(self, name: str, plan: str, monthly_limit: int | None = None) -> tuple[Project, str]:
        """Create a project and its first API key; returns ``(project, api_key)``. The key is shown once."""
        name = _valid_name(name)
        _check_plan(plan, monthly_limit)
        project = Project(
            project_id=str(uuid.uuid4()),
            name=name,
            plan=plan,
            monthly_limit=monthly_limit,
            created_at=datetime.now(UTC),
        )
        key = generate_key()
        try:
            with self.engine.begin() as con:
                same_name = sa.select(projects_table.c.project_id).where(projects_table.c.name == name)
                if con.execute(same_name).first():
                    raise ControlPlaneError(f"a project named {name!r} already exists")
                con.execute(
                    projects_table.insert().values(
                        project_id=project.project_id,
                        name=project.name,
                        plan=project.plan,
                        monthly_limit=project.monthly_limit,
                        created_at=_naive(project.created_at),
                    )
                )
                self._insert_key(con, project.project_id, key)
        except IntegrityError:
            raise ControlPlaneError(f"a project named {name!r} already exists") from None
        return project, key

    def list_projects(self) -> list[Project]:
        """Every project, oldest first."""
        with self.engine.connect() as con:
            rows = con.execute(
                sa.select(projects_table).order_by(projects_table.c.created_at, projects_table.c.name)
            ).all()
        return [_project(row) for row in rows]

    def get_project(self, name_or_id: str) -> Project:
        """The project with this id (a UUID) or else this name; :class:`ControlPlaneError` if there is none.

        A UUID is only ever looked up as an id and names cannot be UUIDs, so one project can never be
        reached through another's name.
        """
        if not isinstance(name_or_id, str) or not name_or_id.strip():
            raise ControlPlaneError("give a project name or id")
        text = name_or_id.strip()
        if _is_uuid(text):
            condition = projects_table.c.project_id == str(uuid.UUID(text))
            missing = f"no project with id {text!r} (see `turret projects list`)"
        else:
            condition = projects_table.c.name == text
            missing = f"no project named {text!r} (see `turret projects list`)"
        with self.engine.connect() as con:
            row = con.execute(sa.select(projects_table).where(condition)).first()
        if row is None:
            raise ControlPlaneError(missing)
        return _project(row)

    def set_plan(self, name_or_id: str, plan: str, monthly_limit: int | None = None) -> Project:
        """Put the project on ``plan`` with ``monthly_limit`` (None: the plan's own limit); returns it.

        A change of plan starts a new quota period at once (turret.plans); the same plan with another limit
        keeps the period. A trial cannot be started again once the project has left it. Running servers
        take the new terms within ``key_cache_seconds``.
        """
        _check_plan(plan, monthly_limit)
        project = self.get_project(name_or_id)
        if plan == "trial" and project.plan != "trial":
            raise ControlPlaneError(
                f"project {project.name!r} is on {project.plan}; a trial cannot be restarted"
            )
        changed_at = project.plan_changed_at
        if plan != project.plan:
            changed_at = datetime.now(UTC)
        with self.engine.begin() as con:
            con.execute(
                projects_table.update()
                .where(projects_table.c.project_id == project.project_id)
                .values(
                    plan=plan,
                    monthly_limit=monthly_limit,
                    plan_changed_at=_naive(changed_at) if changed_at else None,
                )
            )
        self._clear_key_cache()
        return self.get_project(project.project_id)

    # ---- keys

    def _insert_key(self, con: sa.Connection, project_id: str, key: str) -> None:
        con.execute(
            api_keys_table.insert().values(
                key_hash=hash_key(key),
                prefix=key[:KEY_DISPLAY_LENGTH],
                project_id=project_id,
                created_at=_naive(datetime.now(UTC)),
                revoked_at=None,
            )
        )

    def rotate_key(self, name_or_id: str, *, keep_old: bool = False) -> str:
        """Issue a new key for the project; its other keys are revoked unless ``keep_old``."""
        project = self.get_project(name_or_id)
        key = generate_key()
        with self.engine.begin() as con:
            if not keep_old:
                con.execute(
                    api_keys_table.update()
                    .where(
                        api_keys_table.c.project_id == project.project_id,
                        api_keys_table.c.revoked_at.is_(None),
                    )
                    .values(revoked_at=_naive(datetime.now(UTC)))
                )
            self._insert_key(con, project.project_id, key)
        self._clear_key_cache()
        return key

    def revoke_key(self, key_prefix_or_key: str) -> None:
        """Revoke one key, named by its display prefix (``trt_XXXXXXXX``) or the full key."""
        text = (key_prefix_or_key or "").strip()
        if not text.startswith(KEY_PREFIX) or len(text) < KEY_DISPLAY_LENGTH:
            raise ControlPlaneError(
                f"give a key prefix like 'trt_AbCd1234' (the first {KEY_DISPLAY_LENGTH} characters) "
                "or the whole key"
            )
        if len(text) > KEY_DISPLAY_LENGTH:
            condition = api_keys_table.c.key_hash == hash_key(text)
        else:
            condition = api_keys_table.c.prefix == text
        with self.engine.begin() as con:
            query = sa.select(api_keys_table.c.key_hash, api_keys_table.c.revoked_at).where(condition)
            rows = con.execute(query).all()
            if not rows:
                raise ControlPlaneError(f"no API key matches {text[:KEY_DISPLAY_LENGTH]!r}")
            if len(rows) > 1:
                raise ControlPlaneError(f"{text!r} matches {len(rows)} keys; give the whole key")
            if rows[0].revoked_at is not None:
                raise ControlPlaneError(f"key {text[:KEY_DISPLAY_LENGTH]!r} is already revoked")
            con.execute(
                api_keys_table.update()
                .where(api_keys_table.c.key_hash == rows[0].key_hash)
                .values(revoked_at=_naive(datetime.now(UTC)))
            )
        self._clear_key_cache()

    def list_keys(self, name_or_id: str) -> list[dict[str, Any]]:
        """The project's keys as ``{prefix, created_at, revoked_at}``; the key itself is never stored."""
        project = self.get_project(name_or_id)
        with self.engine.connect() as con:
            rows = con.execute(
                sa.select(api_keys_table.c.prefix, api_keys_table.c.created_at, api_keys_table.c.revoked_at)
                .where(api_keys_table.c.project_id == project.project_id)
                .order_by(api_keys_table.c.created_at)
            ).all()
        return [
            {
                "prefix": r.prefix,
                "created_at": _aware(r.created_at),
                "revoked_at": _aware(r.revoked_at) if r.revoked_at else None,
            }
            for r in rows
        ]

    def authenticate(self, api_key: str | None) -> Project | None:
        """The project an active key belongs to, else ``None``.

        Every answer is cached for ``key_cache_seconds``. Lookup is by the key's hash and the stored hash is
        compared with ``hmac.compare_digest`` on every path (known, unknown, malformed), so the time taken
        does not depend on how much of a key an attacker guessed right.
        """
        candidate = api_key if isinstance(api_key, str) else ""
        digest = hash_key(candidate)
        now = time.monotonic()
        with self._cache_lock:
            hit = self._key_cache.get(digest)
        if hit is not None and hit[0] > now:
            project = hit[1]
        else:
            project = self._lookup_key(digest) if self._well_formed(candidate) else None
            with self._cache_lock:
                if len(self._key_cache) >= KEY_CACHE_MAX_ENTRIES:
                    self._key_cache.clear()
                self._key_cache[digest] = (now + self.key_cache_seconds, project)
        stored = digest if project is not None else _NO_HASH
        if not hmac.compare_digest(stored, digest) or project is None:
            return None
        return project

    @staticmethod
    def _well_formed(key: str) -> bool:
        return (
            len(key) == len(KEY_PREFIX) + KEY_BODY_LENGTH
            and key.startswith(KEY_PREFIX)
            and all(c in _BASE62 for c in key[len(KEY_PREFIX) :])
        )

    def _lookup_key(self, digest: str) -> Project | None:
        with self.engine.connect() as con:
            row = con.execute(
                sa.select(projects_table, api_keys_table.c.key_hash)
                .join(api_keys_table, api_keys_table.c.project_id == projects_table.c.project_id)
                .where(api_keys_table.c.key_hash == digest, api_keys_table.c.revoked_at.is_(None))
            ).first()
        if row is None or not hmac.compare_digest(row.key_hash, digest):
            return None
        return _project(row)

    def _clear_key_cache(self) -> None:
        with self._cache_lock:
            self._key_cache.clear()

    # ---- usage

    def period(self, project: Project, now: datetime | None = None) -> Period:
        """The project's quota period containing ``now`` (default: now)."""
        return compute_period(project, now or datetime.now(UTC))

    def usage(self, project: Project, now: datetime | None = None) -> int:
        """Units counted in the current period by every server process (includes unused leased units)."""
        period = self.period(project, now)
        return self._used(project.project_id, _naive(period.start))

    def accepted(self, project: Project, now: datetime | None = None) -> int:
        """Events accepted in the current period: the count less the leased units not handed out yet.

        Leases are synced at least every ``LEASE_SYNC_SECONDS`` by a busy server, so this can trail the
        truth by that much traffic; an idle server's leases are exact.
        """
        period = self.period(project, now)
        start = _naive(period.start)
        with self.engine.connect() as con:
            unused = con.execute(
                sa.select(sa.func.coalesce(sa.func.sum(leases_table.c.unused), 0)).where(
                    leases_table.c.project_id == project.project_id, leases_table.c.period_start == start
                )
            ).scalar()
        return max(0, self._used(project.project_id, start) - int(unused or 0))

    def reserve(
        self, project_id: str, period: Period, want: int, lease: LeaseTicket | None = None
    ) -> tuple[int, int]:
        """Atomically add up to ``want`` units to the period's count without passing its limit.

        Returns ``(reserved, used_after)``. Never over-counts: the ``UPDATE`` only applies when the new
        count stays within the limit, and a partial block is taken at the end of the quota. With ``lease``,
        the lease row of the reserving process is written in the same transaction, so no reserved unit is
        ever outside a lease row that :meth:`reclaim_dead_leases` can find.
        """
        start = _naive(period.start)
        key = (usage_table.c.project_id == project_id) & (usage_table.c.period_start == start)
        for _ in range(100):
            k = min(want, period.limit)
            if k <= 0:
                return 0, self._used(project_id, start)
            with self.engine.begin() as con:
                # The UPDATE is the first statement: SQLite takes the write lock at once (no stale snapshot).
                row = con.execute(
                    usage_table.update()
                    .where(key, usage_table.c.used + k <= period.limit)
                    .values(used=usage_table.c.used + k)
                    .returning(usage_table.c.used)
                ).first()
                if row is not None and lease is not None:
                    self._write_lease(con, project_id, start, lease, lease.unused_after(k))
            if row is not None:
                return k, int(row.used)
            current = self._used_or_none(project_id, start)
            if current is None:
                try:
                    with self.engine.begin() as con:
                        con.execute(
                            usage_table.insert().values(project_id=project_id, period_start=start, used=k)
                        )
                        if lease is not None:
                            self._write_lease(con, project_id, start, lease, lease.unused_after(k))
                    return k, k
                except IntegrityError:
                    continue  # Another process inserted the row first: go round and UPDATE it.
            # Not enough left for the whole block: take what is left (partial grant at the end of a quota).
            left = period.limit - int(current)
            if left <= 0:
                return 0, int(current)
            want = min(want, left)
        return 0, self._used(project_id, start)

    @staticmethod
    def _write_lease(
        con: sa.Connection, project_id: str, start: datetime, lease: LeaseTicket, unused: int
    ) -> None:
        now = _naive(datetime.now(UTC))
        updated = con.execute(
            leases_table.update()
            .where(leases_table.c.lease_id == lease.lease_id)
            .values(unused=unused, updated_at=now)
        ).rowcount
        if not updated:
            con.execute(
                leases_table.insert().values(
                    lease_id=lease.lease_id, project_id=project_id, period_start=start,
                    host=lease.owner.host, pid=lease.owner.pid, pid_started=lease.owner.started,
                    unused=unused, updated_at=now,
                )
            )

    def sync_lease(self, lease_id: str, unused: int) -> bool:
        """Record how many units a lease still holds; False if the lease was reclaimed meanwhile."""
        with self.engine.begin() as con:
            updated = con.execute(
                leases_table.update()
                .where(leases_table.c.lease_id == lease_id)
                .values(unused=max(0, unused), updated_at=_naive(datetime.now(UTC)))
            ).rowcount
        return bool(updated)

    def give_back(
        self, project_id: str, period_start: datetime, units: int, lease_id: str | None = None
    ) -> None:
        """Return unused leased units to the period's count and close the lease ``lease_id``, if given."""
        start = _naive(period_start)
        with self.engine.begin() as con:
            if lease_id is not None:
                con.execute(leases_table.delete().where(leases_table.c.lease_id == lease_id))
            if units > 0:
                con.execute(
                    usage_table.update()
                    .where(usage_table.c.project_id == project_id, usage_table.c.period_start == start)
                    .values(used=sa.case((usage_table.c.used >= units, usage_table.c.used - units), else_=0))
                )

    def reclaim_dead_leases(self, *, now: datetime | None = None) -> int:
        """Give back the units of leases whose process is gone; returns the units given back.

        A lease of this host is dead when its process id no longer runs, or runs a process started at
        another time (a reused pid). A lease of another host is dead once it has not been synced for
        ``LEASE_EXPIRY``: its server is gone or cannot reach the control plane, and a live one that
        comes back finds its lease gone and reserves afresh.
        """
        now = _aware(now or datetime.now(UTC))
        expired = _naive(now - LEASE_EXPIRY)
        host = socket.gethostname()
        with self.engine.connect() as con:
            rows = con.execute(sa.select(leases_table)).all()
        dead = [
            r for r in rows
            if (r.host == host and not LeaseOwner(r.host, r.pid, r.pid_started).is_alive())
            or (r.host != host and r.updated_at < expired)
        ]
        total = 0
        for r in dead:
            with self.engine.begin() as con:
                # Delete first: of two processes reclaiming the same lease only one deletes the row.
                gone = con.execute(
                    leases_table.delete().where(leases_table.c.lease_id == r.lease_id)
                ).rowcount
                if gone and r.unused > 0:
                    con.execute(
                        usage_table.update()
                        .where(usage_table.c.project_id == r.project_id,
                               usage_table.c.period_start == r.period_start)
                        .values(used=sa.case((usage_table.c.used >= r.unused, usage_table.c.used - r.unused),
                                             else_=0))
                    )
                    total += int(r.unused)
        if total:
            log.info("gave back %d quota units leased by %d process(es) that are gone", total, len(dead))
        return total

    def _used(self, project_id: str, start: datetime) -> int:
        return self._used_or_none(project_id, start) or 0

    def _used_or_none(self, project_id: str, start: datetime) -> int | None:
        with self.engine.connect() as con:
            used = con.execute(
                sa.select(usage_table.c.used).where(
                    usage_table.c.project_id == project_id, usage_table.c.period_start == start
                )
            ).scalar()
        return None if used is None else int(used)


def _project(row: Any) -> Project:
    return Project(
        project_id=row.project_id,
        name=row.name,
        plan=row.plan,
        monthly_limit=int(row.monthly_limit) if row.monthly_limit is not None else None,
        created_at=_aware(row.created_at),
        plan_changed_at=_aware(row.plan_changed_at) if row.plan_changed_at else None,
    )


def _make_engine(url: str) -> Engine:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        engine = sa.create_engine(url, connect_args=connect_args)

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_con: Any, _record: Any) -> None:
            cur = dbapi_con.cursor()
            # WAL: readers never block the writer, so several gunicorn processes can share one file.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


# ------------------------------------------------------------------------------------------------- quota


@dataclass
class _Lease:
    period: Period
    units: int  # leased from the database, not yet handed out
    used_seen: int  # the database count after our last reservation (for "remaining")
    lease_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    exhausted_until: float = 0.0
    synced_at: float = 0.0  # monotonic time the lease row last got ``units``
    # What the period was computed from: while it holds and ``now`` is inside the period, the period is
    # reused instead of computed per acquire.
    basis: tuple[Any, ...] | None = None


_live_gates: weakref.WeakSet[QuotaGate] = weakref.WeakSet()


def release_all_gates() -> None:
    """Give back the unused leases of every gate in this process (gunicorn ``worker_exit``)."""
    for gate in list(_live_gates):
        try:
            gate.release()
        except (OperationalError, ProgrammingError):
            pass  # The database is gone at shutdown: the lease rows stay, and the next server reclaims them.


def _forget_inherited_leases() -> None:
    # A forked child must not hand out its parent's leases: they are the parent's to use and give back.
    for gate in list(_live_gates):
        gate._leases = {}
        gate._lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_inherited_leases)


class QuotaGate:
    """Per-process quota admission backed by leases of units reserved in the database.

    ``acquire`` hands out units from the local lease and reserves a new block only when it runs out, so the
    database sees one write per block, not per event, and every process draws from the same count. The
    block is at most 0.1% of the limit (1..1000). Each lease has a row naming its process; a busy process
    records what it has left at least every ``LEASE_SYNC_SECONDS``, and the leases of a process that died
    (kill -9) are given back by the next server that reserves (:meth:`ControlPlane.reclaim_dead_leases`).
    """

    def __init__(self, control_plane: ControlPlane, *, lease_size: int | None = None) -> None:
        if lease_size is not None and lease_size < 1:
            raise ValueError(f"lease_size must be >= 1, got {lease_size}")
        self.control_plane = control_plane
        self.lease_size = lease_size
        self._leases: dict[str, _Lease] = {}
        self._lock = threading.Lock()
        self._owner: LeaseOwner | None = None
        self._reclaimed_at = -LEASE_RECLAIM_SECONDS
        _live_gates.add(self)

    def block_size(self, limit: int) -> int:
        """Units reserved per database round trip for a period with this limit."""
        if self.lease_size is not None:
            return max(1, min(self.lease_size, limit))
        return max(1, min(MAX_LEASE, limit // 1000))

    def _lease_owner(self) -> LeaseOwner:
        if self._owner is None or self._owner.pid != os.getpid():
            self._owner = LeaseOwner.current()
        return self._owner

    def _reclaim_if_due(self) -> None:
        if time.monotonic() - self._reclaimed_at < LEASE_RECLAIM_SECONDS:
            return
        self._reclaimed_at = time.monotonic()
        try:
            self.control_plane.reclaim_dead_leases()
        except (OperationalError, ProgrammingError) as exc:
            log.warning("could not reclaim the leases of dead processes: %s", exc)

    def acquire(self, project: Project, n: int = 1, now: datetime | None = None) -> QuotaDecision:
        """Take up to ``n`` units; ``granted`` may be less than ``n`` (partial) or 0 (quota used up)."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        now = datetime.now(UTC) if now is None else _aware(now)
        basis = (project.plan, project.monthly_limit, project.created_at, project.plan_changed_at)
        with self._lock:
            lease = self._leases.get(project.project_id)
            if lease is not None and lease.basis == basis and lease.period.start <= now < lease.period.end:
                period = lease.period  # same project terms, same period: nothing to recompute
            else:
                period = self.control_plane.period(project, now)
            if lease is None or lease.period != period:
                if lease is not None:
                    # A new period began (or the terms changed): return what was leased under the old one.
                    self.control_plane.give_back(
                        project.project_id, lease.period.start, lease.units, lease.lease_id
                    )
                lease = _Lease(period, 0, 0)
                self._leases[project.project_id] = lease
            lease.basis = basis
            granted = min(n, lease.units)
            lease.units -= granted
            missing = n - granted
            if missing and time.monotonic() >= lease.exhausted_until:
                self._reclaim_if_due()
                want = max(missing, self.block_size(period.limit))
                ticket = LeaseTicket(lease.lease_id, self._lease_owner(), lease.units, missing)
                reserved, lease.used_seen = self.control_plane.reserve(
                    project.project_id, period, want, ticket
                )
                take = min(missing, reserved)
                granted += take
                lease.units += reserved - take
                if reserved:
                    lease.synced_at = time.monotonic()
                if granted < n:
                    lease.exhausted_until = time.monotonic() + EXHAUSTED_RECHECK_SECONDS
            elif granted and time.monotonic() - lease.synced_at >= LEASE_SYNC_SECONDS:
                self._sync(lease)
            remaining = max(0, period.limit - lease.used_seen) + lease.units
            return QuotaDecision(
                granted=granted, limit=period.limit, remaining=remaining, reset_at=period.end
            )

    def _sync(self, lease: _Lease) -> None:
        lease.synced_at = time.monotonic()
        if not self.control_plane.sync_lease(lease.lease_id, lease.units):
            # Reclaimed as dead (not synced for LEASE_EXPIRY): its units are back in the count, not ours.
            lease.units = 0

    def refund(self, project_id: str, n: int) -> None:
        """Take back ``n`` units granted for events that were then not stored (a failed write)."""
        if n <= 0:
            return
        with self._lock:
            lease = self._leases.get(project_id)
            if lease is not None:
                lease.units += n
                try:
                    self._sync(lease)
                except (OperationalError, ProgrammingError) as exc:
                    log.warning("could not record refunded quota units yet: %s", exc)

    def release(self) -> None:
        """Return every unused leased unit to the database and close the leases (server shutdown)."""
        with self._lock:
            leases, self._leases = self._leases, {}
        for project_id, lease in leases.items():
            self.control_plane.give_back(project_id, lease.period.start, lease.units, lease.lease_id)


__all__ = [
    "PLANS",
    "LeaseOwner",
    "LeaseTicket",
    "ControlPlane",
    "ControlPlaneError",
    "Period",
    "Plan",
    "Project",
    "QuotaDecision",
    "QuotaGate",
]
