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
import secrets
import string
import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

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


class ControlPlaneError(ValueError):
    """A control-plane request that cannot be done; the message says why in the user's terms."""


# ------------------------------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class Plan:
    """A plan: ``limit`` events per period; ``trial_days`` set means one period from creation."""

    name: str
    limit: int | None  # None: the project must carry its own limit (enterprise)
    trial_days: int | None = None
    description: str = ""


PLANS: dict[str, Plan] = {
    "trial": Plan("trial", 250_000, trial_days=14, description="250k events in total within 14 days"),
    "pro": Plan("pro", 1_000_000, description="1,000,000 events per calendar month (UTC)"),
    "business": Plan("business", 10_000_000, description="10,000,000 events per calendar month (UTC)"),
    "enterprise": Plan("enterprise", None, description="custom monthly limit (--monthly-limit)"),
}


@dataclass(frozen=True)
class Project:
    """A project: the unit that owns API keys, a plan and a quota."""

    project_id: str
    name: str
    plan: str
    monthly_limit: int | None
    created_at: datetime

    def limit(self) -> int:
        """Events allowed per period: the explicit override, else the plan's limit."""
        if self.monthly_limit is not None:
            return self.monthly_limit
        plan_limit = PLANS[self.plan].limit
        if plan_limit is None:
            raise ControlPlaneError(
                f"project {self.name!r} is on plan {self.plan!r} but has no monthly limit"
            )
        return plan_limit


@dataclass(frozen=True)
class Period:
    """The quota window ``[start, end)`` and how many events it allows."""

    start: datetime
    end: datetime
    limit: int


@dataclass(frozen=True)
class QuotaDecision:
    """Answer of :meth:`QuotaGate.acquire`: ``granted`` of the asked units (0..n)."""

    granted: int
    limit: int
    remaining: int
    reset_at: datetime


def _month_start(at: datetime) -> datetime:
    return datetime(at.year, at.month, 1, tzinfo=UTC)


def _next_month(start: datetime) -> datetime:
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


def compute_period(project: Project, now: datetime) -> Period:
    """The quota period containing ``now``.

    trial: ``[created, created + 14 days)``; after it the project gets calendar-month periods with limit 0
    (the trial is over until the plan changes). Every other plan: the calendar month in UTC.
    """
    now = _aware(now)
    plan = PLANS[project.plan]
    if plan.trial_days is not None:
        start = project.created_at
        end = start + timedelta(days=plan.trial_days)
        if now < end:
            return Period(start, end, project.limit())
        month = _month_start(now)
        return Period(max(month, end), _next_month(month), 0)
    month = _month_start(now)
    return Period(month, _next_month(month), project.limit())


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


def hash_key(api_key: str) -> str:
    """SHA-256 hex of an API key: the only form in which keys are stored."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def generate_key() -> str:
    """A new API key: ``trt_`` + 40 base62 characters (~238 bits) from ``secrets``."""
    return KEY_PREFIX + "".join(secrets.choice(_BASE62) for _ in range(KEY_BODY_LENGTH))


# A hash no key has (not hex): compared against when a key is unknown, so both paths run compare_digest.
_NO_HASH = "x" * 64


def _valid_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ControlPlaneError("project name must not be empty")
    name = name.strip()
    if len(name) > 200:
        raise ControlPlaneError("project name is longer than 200 characters")
    if any(ord(c) < 32 for c in name):
        raise ControlPlaneError("project name must not contain control characters")
    return name


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
        if url.startswith("sqlite"):
            database = sa.engine.make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        return cls(url, key_cache_seconds=getattr(settings, "key_cache_seconds", 5.0))

    def _create_tables(self) -> None:
        # Several gunicorn workers may start at once: a lost race to CREATE TABLE is fine if the table exists.
        for attempt in range(3):
            try:
                metadata.create_all(self.engine)
                return
            except (OperationalError, ProgrammingError, IntegrityError):
                if attempt == 2:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def dispose(self) -> None:
        """Close pooled connections (before a fork, at shutdown)."""
        self.engine.dispose()

    # ---- projects

    def create_project(self, name: str, plan: str, monthly_limit: int | None = None) -> tuple[Project, str]:
        """Create a project and its first API key; returns ``(project, api_key)``. The key is shown once."""
        name = _valid_name(name)
        if plan not in PLANS:
            raise ControlPlaneError(f"unknown plan {plan!r}; choose one of: {', '.join(PLANS)}")
        if monthly_limit is not None:
            if isinstance(monthly_limit, bool) or not isinstance(monthly_limit, int) or monthly_limit <= 0:
                raise ControlPlaneError(f"monthly limit must be a positive integer, got {monthly_limit!r}")
        elif PLANS[plan].limit is None:
            raise ControlPlaneError(f"plan {plan!r} needs an explicit monthly limit (--monthly-limit N)")
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
        """The project with this name or id; :class:`ControlPlaneError` if there is none."""
        if not isinstance(name_or_id, str) or not name_or_id:
            raise ControlPlaneError("give a project name or id")
        with self.engine.connect() as con:
            row = con.execute(
                sa.select(projects_table).where(
                    sa.or_(projects_table.c.project_id == name_or_id, projects_table.c.name == name_or_id)
                )
            ).first()
        if row is None:
            raise ControlPlaneError(f"no project named {name_or_id!r} (see `turret projects list`)")
        return _project(row)

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
        """Events counted in the current period by every server process (includes unused leased units)."""
        period = self.period(project, now)
        with self.engine.connect() as con:
            used = con.execute(
                sa.select(usage_table.c.used).where(
                    usage_table.c.project_id == project.project_id,
                    usage_table.c.period_start == _naive(period.start),
                )
            ).scalar()
        return int(used or 0)

    def reserve(self, project_id: str, period: Period, want: int) -> tuple[int, int]:
        """Atomically add up to ``want`` units to the period's count without passing its limit.

        Returns ``(reserved, used_after)``. Never over-counts: the ``UPDATE`` only applies when the new
        count stays within the limit, and a partial block is taken at the end of the quota.
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
            if row is not None:
                return k, int(row.used)
            current = self._used_or_none(project_id, start)
            if current is None:
                try:
                    with self.engine.begin() as con:
                        con.execute(
                            usage_table.insert().values(project_id=project_id, period_start=start, used=k)
                        )
                    return k, k
                except IntegrityError:
                    continue  # Another process inserted the row first: go round and UPDATE it.
            # Not enough left for the whole block: take what is left (partial grant at the end of a quota).
            left = period.limit - int(current)
            if left <= 0:
                return 0, int(current)
            want = min(want, left)
        return 0, self._used(project_id, start)

    def give_back(self, project_id: str, period_start: datetime, units: int) -> None:
        """Return unused leased units to the period's count."""
        if units <= 0:
            return
        start = _naive(period_start)
        with self.engine.begin() as con:
            con.execute(
                usage_table.update()
                .where(usage_table.c.project_id == project_id, usage_table.c.period_start == start)
                .values(used=sa.case((usage_table.c.used >= units, usage_table.c.used - units), else_=0))
            )

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
    exhausted_until: float = 0.0
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
            pass  # The database is gone at shutdown: the units stay counted, an over-count of < one block.


class QuotaGate:
    """Per-process quota admission backed by leases of units reserved in the database.

    ``acquire`` hands out units from the local lease and reserves a new block only when it runs out, so the
    database sees one write per block, not per event, and every process draws from the same count. The
    block is at most 0.1% of the limit (1..1000): unused leases (a process dies holding one) cost little.
    """

    def __init__(self, control_plane: ControlPlane, *, lease_size: int | None = None) -> None:
        if lease_size is not None and lease_size < 1:
            raise ValueError(f"lease_size must be >= 1, got {lease_size}")
        self.control_plane = control_plane
        self.lease_size = lease_size
        self._leases: dict[str, _Lease] = {}
        self._lock = threading.Lock()
        _live_gates.add(self)

    def block_size(self, limit: int) -> int:
        """Units reserved per database round trip for a period with this limit."""
        if self.lease_size is not None:
            return max(1, min(self.lease_size, limit))
        return max(1, min(MAX_LEASE, limit // 1000))

    def acquire(self, project: Project, n: int = 1, now: datetime | None = None) -> QuotaDecision:
        """Take up to ``n`` units; ``granted`` may be less than ``n`` (partial) or 0 (quota used up)."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        now = datetime.now(UTC) if now is None else _aware(now)
        basis = (project.plan, project.monthly_limit, project.created_at)
        with self._lock:
            lease = self._leases.get(project.project_id)
            if lease is not None and lease.basis == basis and lease.period.start <= now < lease.period.end:
                period = lease.period  # same project terms, same period: nothing to recompute
            else:
                period = self.control_plane.period(project, now)
            if lease is None or lease.period != period:
                if lease is not None and lease.units:
                    # A new period began (or the limit changed): return what was leased under the old one.
                    self.control_plane.give_back(project.project_id, lease.period.start, lease.units)
                lease = _Lease(period, 0, 0)
                self._leases[project.project_id] = lease
            lease.basis = basis
            granted = min(n, lease.units)
            lease.units -= granted
            missing = n - granted
            if missing and time.monotonic() >= lease.exhausted_until:
                want = max(missing, self.block_size(period.limit))
                reserved, lease.used_seen = self.control_plane.reserve(project.project_id, period, want)
                take = min(missing, reserved)
                granted += take
                lease.units += reserved - take
                if granted < n:
                    lease.exhausted_until = time.monotonic() + EXHAUSTED_RECHECK_SECONDS
            remaining = max(0, period.limit - lease.used_seen) + lease.units
            return QuotaDecision(
                granted=granted, limit=period.limit, remaining=remaining, reset_at=period.end
            )

    def release(self) -> None:
        """Return every unused leased unit to the database (server shutdown)."""
        with self._lock:
            leases, self._leases = self._leases, {}
        for project_id, lease in leases.items():
            self.control_plane.give_back(project_id, lease.period.start, lease.units)


__all__ = [
    "PLANS",
    "ControlPlane",
    "ControlPlaneError",
    "Period",
    "Plan",
    "Project",
    "QuotaDecision",
    "QuotaGate",
]
