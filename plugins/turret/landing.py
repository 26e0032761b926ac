"""The landing store: append-only JSON Lines segments, one writer file per process and hour.

Writer side (the ingest API): :class:`LandingWriter` appends records to this process's own open segment
``<root>/date=YYYY-MM-DD/hour=HH/<host>-<pid>-<start>-<rand>.jsonl.open`` and returns only once the lines
are on disk (``fsync``); concurrent appends share one ``fsync`` (group commit). No lock is ever taken across
processes: every process owns its files.

Sealing: a segment is sealed by ``fsync`` + atomic rename of ``.jsonl.open`` to ``.jsonl`` + ``fsync`` of the
directory. The loader reads sealed segments only (:func:`iter_sealed_segments`, :func:`read_segment`), so a
sealed file never changes again. Open segments are sealed

- by their writer when the hour of ``received_at`` rolls over (checked at every write and once a second),
  on :meth:`LandingWriter.seal` / :meth:`LandingWriter.close` (server shutdown), and when a *seal request*
  (:func:`request_seal`, a timestamp in ``<root>/.seal-request``) is newer than the segment's start;
- by :func:`seal_orphans` when the writing process is dead (crash, ``SIGKILL``), e.g. at server start;
- by :func:`seal_idle` for hours that ended before the pipeline's interval when the writer is dead or the
  hour ended more than an hour ago (a stuck writer or one on another host).

A torn last line (the writer died mid-``write``) is never dropped or repaired: it stays in the sealed file and
:func:`read_segment` reports it with a reason, so nothing is silently lost. docs/adr/0002-landing-store.md
explains the choices.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import secrets
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from turret.filemodes import PRIVATE_FILE, private_dir

FORMAT_VERSION = 1
logger = logging.getLogger(__name__)
OPEN_SUFFIX = ".jsonl.open"
SEALED_SUFFIX = ".jsonl"
SEAL_REQUEST_FILE = ".seal-request"
# How often a writer looks at the clock (hour rollover) and at the seal-request file when idle.
TICK_SECONDS = 1.0

CONTRACTS = ("turret", "trieve")
_EVENT_ID_RE = re.compile(r"^evt_[0-9a-f]{32}$")
_NAME_RE = re.compile(r"^(?P<host>.+)-(?P<pid>\d+)-(?P<start>\d{8}T\d{12}Z)-(?P<rand>[0-9a-f]+)$")
_START_FMT = "%Y%m%dT%H%M%S%fZ"


class LandingError(Exception):
    """The landing store cannot take the write (disk full, permission, ...). The API answers 503."""


class RecordError(ValueError):
    """A record cannot be serialized as strict JSON (``inf``/``nan``, a non-JSON type, a lone surrogate).

    Nothing was written. The data is at fault, not the store: the API answers 400, never 500 or 503.
    """


# One encoder for every line: ``json.dumps`` with non-default arguments builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


# --------------------------------------------------------------------------------------------- ids and time


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def iso(dt: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a ``Z``: ``2025-01-31T12:00:00.000000Z``. Naive means UTC.

    The year is always four digits, zero-padded (``0999-…``): ``strftime("%Y")`` writes ``999``, which
    :func:`parse_iso` (``datetime.fromisoformat``) cannot read back.
    """
    if dt.tzinfo is None:
        return dt.isoformat(timespec="microseconds") + "Z"
    if dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    return dt.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


# The last (datetime, iso) pair: a batch stamps every record with the same ``received_at`` object.
_last_iso: tuple[datetime | None, str] = (None, "")


def _iso_cached(dt: datetime) -> str:
    global _last_iso
    last_dt, text = _last_iso  # one tuple read: consistent even with concurrent writers
    if last_dt is dt:
        return text
    text = iso(dt)
    _last_iso = (dt, text)
    return text


def parse_iso(text: str) -> datetime:
    """Parse a timestamp written by :func:`iso` (or any ISO 8601 form with an offset) to aware UTC."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


_id_lock = threading.Lock()
_id_last_ms = 0
_id_seq = 0
# The low 62 bits: a random per-process prefix (38 bits, drawn again in a forked child) and a counter
# (24 bits). Within a process (ms, seq, counter) never repeats; across processes the prefixes differ.
_ID_COUNTER_BITS = 24
_ID_COUNTER_MASK = (1 << _ID_COUNTER_BITS) - 1
_id_prefix = 0
_id_counter = 0


def _reseed_event_ids() -> None:
    global _id_prefix, _id_counter, _id_lock, _id_last_ms, _id_seq
    _id_lock = threading.Lock()  # a lock held by another thread at fork time would never be released
    _id_prefix = secrets.randbits(62 - _ID_COUNTER_BITS) << _ID_COUNTER_BITS
    _id_counter = secrets.randbits(_ID_COUNTER_BITS)
    _id_last_ms = _id_seq = 0


_reseed_event_ids()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed_event_ids)


def new_event_id() -> str:
    """``evt_`` + 32 hex digits laid out like a UUIDv7: 48-bit milliseconds, then a sequence, then a
    per-process random prefix and counter.

    Ids generated in one process sort in generation order (the 12-bit sequence counts up within a
    millisecond); across processes they sort by millisecond. No system call per id: the randomness is
    drawn once per process (and again after a fork).
    """
    global _id_last_ms, _id_seq, _id_counter
    with _id_lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _id_last_ms:
            # Same millisecond (or the clock stepped back): keep ordering by counting up.
            _id_seq += 1
            if _id_seq > 0xFFF:
                _id_last_ms += 1
                _id_seq = 0
            ms = _id_last_ms
        else:
            _id_last_ms = ms
            # Start low in the 12-bit space so a burst within one millisecond does not overflow.
            _id_seq = _id_counter & 0xFF
        seq = _id_seq
        _id_counter = (_id_counter + 1) & _ID_COUNTER_MASK
        low = _id_prefix | _id_counter
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | seq << 64 | 0b10 << 62 | low
    return f"evt_{value:032x}"


# ------------------------------------------------------------------------------------------------ records

_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "v": int,
    "event_id": str,
    "project_id": str,
    "contract": str,
    "name": str,
    "session_id": str,
    "user_id": str,
    "session_id_generated": bool,
    "user_id_generated": bool,
    "timestamp": str,
    "received_at": str,
    "metadata": dict,
}


def make_record(
    *,
    project_id: str,
    contract: str,
    name: str,
    metadata: dict[str, Any],
    session_id: str,
    user_id: str,
    session_id_generated: bool,
    user_id_generated: bool,
    timestamp: datetime,
    received_at: datetime,
    event_id: str,
    event_type: str | None = None,
    payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One landing record (format version 1, docs/architecture.md). ``payload`` only for Trieve events."""
    received = _iso_cached(received_at)
    record: dict[str, Any] = {
        "v": FORMAT_VERSION,
        "event_id": event_id,
        "project_id": project_id,
        "contract": contract,
        "event_type": event_type,
        "name": name,
        "session_id": session_id,
        "user_id": user_id,
        "session_id_generated": bool(session_id_generated),
        "user_id_generated": bool(user_id_generated),
        "timestamp": received if timestamp is received_at else iso(timestamp),
        "received_at": received,
        "metadata": metadata,
    }
    if payload is not None:
        record["payload"] = payload
    return record


def validate_record(obj: Any) -> str | None:
    """``None`` if ``obj`` is a valid version-1 record, else the first reason it is not."""
    if not isinstance(obj, dict):
        return f"record is a JSON {type(obj).__name__}, not an object"
    for key, kind in _REQUIRED.items():
        if key not in obj:
            return f"missing key {key!r}"
        value = obj[key]
        # bool is an int subclass: "v": true must not pass as version 1.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            expected = kind.__name__  # type: ignore[union-attr]
            return f"key {key!r} has type {type(value).__name__}, expected {expected}"
    if obj["v"] != FORMAT_VERSION:
        return f"unsupported format version {obj['v']} (this reader knows {FORMAT_VERSION})"
    if obj["contract"] not in CONTRACTS:
        return f"unknown contract {obj['contract']!r}"
    if obj.get("event_type") is not None and not isinstance(obj["event_type"], str):
        return "key 'event_type' must be a string or null"
    for key in ("event_id", "project_id", "name", "session_id", "user_id"):
        if not obj[key]:
            return f"key {key!r} is empty"
    for key in ("timestamp", "received_at"):
        try:
            parse_iso(obj[key])
        except ValueError:
            return f"key {key!r} is not an ISO 8601 timestamp: {obj[key]!r}"
    for mkey, mvalue in obj["metadata"].items():
        if mvalue is not None and not isinstance(mvalue, str | int | float | bool):
            return f"metadata {mkey!r} is a {type(mvalue).__name__}; values must be str, number, bool or null"
    if "payload" in obj and not isinstance(obj["payload"], dict):
        return "key 'payload' must be an object"
    return None


# ------------------------------------------------------------------------------------------ segment names


def _safe_host(host: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", host) or "host"


def default_host() -> str:
    """This machine's name as it appears in segment file names."""
    return _safe_host(socket.gethostname())


@dataclass(frozen=True)
class SegmentName:
    """What a segment's file name says: who wrote it and when the segment was opened."""

    host: str
    pid: int
    started_at: datetime
    sealed: bool

    @classmethod
    def parse(cls, path: Path) -> SegmentName | None:
        name = path.name
        if name.endswith(OPEN_SUFFIX):
            stem, sealed = name[: -len(OPEN_SUFFIX)], False
        elif name.endswith(SEALED_SUFFIX):
            stem, sealed = name[: -len(SEALED_SUFFIX)], True
        else:
            return None
        m = _NAME_RE.match(stem)
        if not m:
            return None
        started = datetime.strptime(m["start"], _START_FMT).replace(tzinfo=UTC)
        return cls(host=m["host"], pid=int(m["pid"]), started_at=started, sealed=sealed)


def hour_dir(root: Path, at: datetime) -> Path:
    """``<root>/date=YYYY-MM-DD/hour=HH`` for the UTC hour containing ``at``."""
    at = at.astimezone(UTC)
    return Path(root) / f"date={at:%Y-%m-%d}" / f"hour={at:%H}"


def segment_hour(path: Path) -> datetime | None:
    """The UTC hour a segment belongs to, read from its ``date=``/``hour=`` directories."""
    try:
        date = path.parent.parent.name.removeprefix("date=")
        hour = path.parent.name.removeprefix("hour=")
        return datetime.strptime(f"{date} {hour}", "%Y-%m-%d %H").replace(tzinfo=UTC)
    except ValueError:
        return None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _seal_path(path: Path) -> Path:
    """fsync, rename ``.jsonl.open`` -> ``.jsonl`` atomically, fsync the directory. Never edits content."""
    target = _sealed_name(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(path, target)
    _fsync_dir(path.parent)
    return target


# ------------------------------------------------------------------------------------------------- writer


class _Pending:
    """One unit of work in the writer's queue: the lines of one hour from one ``append`` call, or a
    housekeeping request (``kind`` "tick", "seal" or "close") with no data.

    The owner waits on a bare lock, acquired at creation and released once by whichever thread ends the
    wait: the leader that wrote the lines (``done`` is then true), or the leader that hands leadership on
    to this owner (``done`` still false). A bare lock is the cheapest one-shot signal (a
    ``threading.Event`` builds a Condition and a lock per request).
    """

    __slots__ = ("data", "hour", "kind", "enqueued", "_lock", "done", "error")

    def __init__(self, data: bytes, hour: datetime | None, kind: str = "lines") -> None:
        self.data = data
        self.hour = hour
        self.kind = kind
        self.enqueued = time.monotonic()
        self._lock = threading.Lock()
        self._lock.acquire()
        self.done = False
        self.error: BaseException | None = None

    def wake(self) -> None:
        self._lock.release()

    def wait(self) -> None:
        self._lock.acquire()


class _Segment:
    __slots__ = ("path", "fd", "hour", "started_at", "size")

    def __init__(self, path: Path, fd: int, hour: datetime, started_at: datetime) -> None:
        self.path = path
        self.fd = fd
        self.hour = hour
        self.started_at = started_at
        self.size = 0


_live_writers: weakref.WeakSet[LandingWriter] = weakref.WeakSet()
# "YYYY-MM-DDTHH" of a received_at written by iso() -> that hour (see LandingWriter._hour_of).
_hour_cache: dict[str, datetime] = {}


def close_all_writers() -> None:
    """Close every writer of this process (gunicorn ``worker_exit``, ``atexit``)."""
    for writer in list(_live_writers):
        try:
            writer.close()
        except LandingError:
            pass  # Nothing more to do at exit; orphan recovery seals what is left.


atexit.register(close_all_writers)


class LandingWriter:
    """Appends records to this process's open segment; durable on return (group-committed ``fsync``).

    Group commit without a writer thread (leader/follower, as in LevelDB's write queue): an appender
    queues its serialized lines; if no write is in progress it becomes the *leader*, takes everything
    queued, writes it with one ``write`` per segment and one ``fsync``, and wakes the appenders whose lines
    it wrote. Lines queued while an ``fsync`` runs batch up by themselves; the leader hands leadership to
    the first of them, which writes them all at once. An uncontended append therefore costs no thread
    switch at all. Only a leader that found the writer idle waits up to ``group_commit_ms`` after its
    first line for more to join.

    Sealing at hour rollover is checked after every write; a small ticker thread also queues a
    housekeeping request at least every second (rollover and seal requests while no traffic arrives).
    Segments are touched only by the current leader.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        group_commit_ms: float = 0.0,
        host: str | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if group_commit_ms < 0:
            raise ValueError(f"group_commit_ms must be >= 0, got {group_commit_ms}")
        self.root = Path(root)
        self.group_commit_ms = float(group_commit_ms)
        self.host = _safe_host(host) if host else default_host()
        self.clock = clock
        self.pid = os.getpid()
        self._lock = threading.Lock()  # guards _queue, _leader, _closed
        self._queue: list[_Pending] = []
        self._leader = False
        self._closed = False
        self._segments: dict[datetime, _Segment] = {}  # open segments by hour; touched only by the leader
        self._next_tick = 0.0
        self._ticker: threading.Thread | None = None
        self._ticker_stop = threading.Event()
        self._ticker_lock = threading.Lock()
        self.fsyncs = 0  # how many group commits ran (tests and benchmarks read it)
        _live_writers.add(self)

    # ---- public API

    def append(self, records: Sequence[dict[str, Any]]) -> None:
        """Write ``records`` as JSON lines; return once they are fsynced. Raises :class:`LandingError`."""
        if not records:
            return
        encode = _ENCODER.encode
        try:
            groups: dict[datetime, list[bytes]] = {}
            for record in records:
                line = encode(record).encode("utf-8") + b"\n"
                hour = self._hour_of(record)
                lines = groups.get(hour)
                if lines is None:
                    groups[hour] = [line]
                else:
                    lines.append(line)
        except (TypeError, ValueError, RecursionError) as exc:
            # The data, not storage: inf/nan, a non-JSON type, a lone surrogate. Nothing was written.
            raise RecordError(f"record cannot be serialized as JSON: {exc}") from exc
        self._ensure_process()
        pendings = [_Pending(b"".join(lines), hour) for hour, lines in groups.items()]
        self._submit(pendings)
        for pending in pendings:
            if pending.error is not None:
                raise LandingError(f"landing store write failed: {pending.error}") from pending.error

    def seal(self) -> None:
        """Seal the open segments now (lines queued before the call are written first)."""
        if self.pid != os.getpid():
            return
        pending = _Pending(b"", None, "seal")
        try:
            self._submit([pending])
        except LandingError:
            return  # closed: close() sealed everything already

    def close(self) -> None:
        """Write what is queued, seal, stop the ticker. Idempotent; later appends raise LandingError."""
        if self.pid != os.getpid():
            # Inherited through a fork: the parent's segments belong to the parent. Forget them here.
            self._reset_after_fork()
        try:
            self._submit([_Pending(b"", None, "close")], closing=True)
        except LandingError:
            return  # closed already
        self._ticker_stop.set()
        ticker = self._ticker
        if ticker is not None and ticker is not threading.current_thread():
            ticker.join()
        _live_writers.discard(self)

    def open_segments(self) -> list[Path]:
        """Paths of this writer's open segments (for status output and tests)."""
        return [seg.path for seg in list(self._segments.values())]

    # ---- queue and leadership

    def _submit(self, pendings: list[_Pending], *, closing: bool = False) -> None:
        """Queue ``pendings`` (all taken by one batch) and return once a leader has handled them, leading
        when it is our turn. ``closing`` refuses every later submission, atomically with this one."""
        with self._lock:
            if self._closed:
                raise LandingError("landing writer is closed")
            if closing:
                self._closed = True
            self._queue.extend(pendings)
            lead = not self._leader
            if lead:
                self._leader = True
        if not lead:
            pendings[0].wait()
            if pendings[0].done:
                return
            # Handed leadership: our lines are first in the queue, and the batch we take holds them.
        self._lead(from_idle=lead)

    def _lead(self, *, from_idle: bool) -> None:
        """Take the queue, write it, wake its owners, then hand leadership to the next queued owner."""
        batch: list[_Pending] = []
        try:
            if from_idle and self.group_commit_ms > 0:
                # Group commit from idle: give concurrent appenders until oldest + window to join.
                with self._lock:
                    oldest = self._queue[0].enqueued if self._queue else time.monotonic()
                    closing = self._closed
                remaining = oldest + self.group_commit_ms / 1000.0 - time.monotonic()
                if remaining > 0 and not closing:
                    time.sleep(remaining)
            with self._lock:
                batch, self._queue = self._queue, []
            self._write_batch(batch)
        finally:
            with self._lock:
                successor = self._queue[0] if self._queue else None
                if successor is None:
                    self._leader = False
            for pending in batch:
                pending.done = True
                pending.wake()
            if successor is not None:
                successor.wake()

    def _write_batch(self, batch: list[_Pending]) -> None:
        """Write and fsync the lines of ``batch`` per hour, then housekeeping; errors go to the owners."""
        by_hour: dict[datetime, list[_Pending]] = {}
        kinds: set[str] = set()
        for pending in batch:
            if pending.kind == "lines":
                by_hour.setdefault(pending.hour, []).append(pending)  # type: ignore[arg-type]
            else:
                kinds.add(pending.kind)
        for hour, pendings in by_hour.items():
            error: BaseException | None = None
            seg: _Segment | None = None
            try:
                seg = self._segment_for(hour)
                data = b"".join(p.data for p in pendings)
                view = memoryview(data)
                while view:
                    written = os.write(seg.fd, view)
                    view = view[written:]
                os.fdatasync(seg.fd)
                seg.size += len(data)
                self.fsyncs += 1
            except OSError as exc:
                error = exc
                if seg is not None:
                    self._abandon(seg)
            except BaseException as exc:  # noqa: BLE001 - appenders must always be woken
                error = exc
            for pending in pendings:
                pending.error = error
        # Hour rollover is checked after every write too, not only on the tick, and before the appenders
        # wake, so an acknowledged write of a new hour implies the previous hour's segment is sealed.
        try:
            if by_hour:
                self._seal_rolled_over()
            now = time.monotonic()
            if "tick" in kinds or now >= self._next_tick:
                self._next_tick = now + TICK_SECONDS
                self._check_seal_request()
                self._seal_rolled_over()
        except Exception:  # noqa: BLE001 - housekeeping must never fail a write or stop the writer
            logger.exception("landing writer housekeeping failed; retrying in %.0f s", TICK_SECONDS)
        if "seal" in kinds or "close" in kinds:
            self._seal_all()

    # ---- ticker thread and fork

    def _ensure_process(self) -> None:
        if self.pid != os.getpid():
            with self._ticker_lock:
                if self.pid != os.getpid():
                    self._reset_after_fork()
        ticker = self._ticker
        if ticker is not None and ticker.is_alive():
            return
        with self._ticker_lock:
            if (self._ticker is None or not self._ticker.is_alive()) and not self._closed:
                self._ticker_stop.clear()
                self._ticker = threading.Thread(target=self._tick_loop, name="landing-ticker", daemon=True)
                self._ticker.start()

    def _reset_after_fork(self) -> None:
        """Forked after use: the parent's segments, queue and threads belong to the parent."""
        self.pid = os.getpid()
        self._lock = threading.Lock()  # a lock held by another thread at fork time would never be released
        self._queue = []
        self._leader = False
        self._segments = {}
        self._ticker = None
        self._ticker_stop = threading.Event()

    def _tick_loop(self) -> None:
        """Once a second, ask for housekeeping unless a write ran it recently."""
        while not self._ticker_stop.wait(max(0.0, min(TICK_SECONDS, self._next_tick - time.monotonic()))):
            if time.monotonic() < self._next_tick:
                continue
            try:
                self._submit([_Pending(b"", None, "tick")])
            except LandingError:
                return  # closed
            except Exception:  # noqa: BLE001 - the ticker must keep ticking
                logger.exception("landing writer tick failed")

    def _hour_of(self, record: dict[str, Any]) -> datetime:
        text = record.get("received_at")
        if type(text) is str and len(text) == 27 and text[-1] == "Z":
            # iso()'s own form: the hour is the first 13 characters; parse each hour once.
            key = text[:13]
            hour = _hour_cache.get(key)
            if hour is not None:
                return hour
            try:
                hour = parse_iso(text).replace(minute=0, second=0, microsecond=0)
            except ValueError:
                pass
            else:
                if len(_hour_cache) >= 256:
                    _hour_cache.clear()
                _hour_cache[key] = hour
                return hour
        try:
            at = parse_iso(text)  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError, AttributeError):
            at = self.clock()
        return at.replace(minute=0, second=0, microsecond=0)

    def _segment_for(self, hour: datetime) -> _Segment:
        seg = self._segments.get(hour)
        if seg is not None:
            return seg
        directory = private_dir(hour_dir(self.root, hour))
        started = self.clock().astimezone(UTC)
        name = f"{self.host}-{self.pid}-{started.strftime(_START_FMT)}-{secrets.token_hex(4)}{OPEN_SUFFIX}"
        path = directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, PRIVATE_FILE)
        os.fchmod(fd, PRIVATE_FILE)  # the umask may have masked less than 0600 asks
        try:
            # The new directory entry must survive a crash as much as the lines in it.
            _fsync_dir(directory)
        except OSError:
            os.close(fd)
            raise
        seg = _Segment(path, fd, hour, started)
        self._segments[hour] = seg
        return seg

    def _abandon(self, seg: _Segment) -> None:
        """After a failed write: cut back to the last good length, seal, and start a new segment next time."""
        self._segments.pop(seg.hour, None)
        try:
            os.ftruncate(seg.fd, seg.size)
        except OSError:
            pass  # The reader will report the partial line; nothing was acknowledged from it.
        self._close_segment(seg)

    def _close_segment(self, seg: _Segment) -> None:
        try:
            os.close(seg.fd)
        except OSError:
            pass
        if seg.size == 0:
            # Nothing was ever written (the first write failed): no empty segment for the loader to list.
            try:
                os.unlink(seg.path)
                _fsync_dir(seg.path.parent)
            except OSError:
                pass  # Left on disk, an empty .open file loads as nothing once sealed.
            return
        try:
            _seal_path(seg.path)
        except FileNotFoundError:
            pass  # Sealed by someone else (seal_idle); the content is already in the .jsonl.
        except OSError:
            pass  # Left open on disk; seal_orphans picks it up once this process is gone.

    def _seal_all(self) -> None:
        for hour in list(self._segments):
            self._close_segment(self._segments.pop(hour))

    def _seal_rolled_over(self) -> None:
        current = self.clock().astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        for hour in [h for h in self._segments if h < current]:
            self._close_segment(self._segments.pop(hour))

    def _check_seal_request(self) -> None:
        if not self._segments:
            return
        requested = read_seal_request(self.root)
        if requested is None:
            return
        for hour, seg in list(self._segments.items()):
            if requested > seg.started_at:
                self._close_segment(self._segments.pop(hour))


# ------------------------------------------------------------------------------------------ seal requests


def write_seal_request(root: str | os.PathLike[str], at: datetime | None = None) -> datetime:
    """Write ``<root>/.seal-request`` (atomically) asking live writers to seal segments opened before ``at``.

    Writers look at it at least once a second. Returns the request time.
    """
    root = private_dir(root)
    at = (at or utc_now()).astimezone(UTC)
    tmp = root / f"{SEAL_REQUEST_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    tmp.write_text(iso(at) + "\n")
    os.replace(tmp, root / SEAL_REQUEST_FILE)
    return at


def request_seal(
    root: str | os.PathLike[str], *, timeout: float = 5.0, at: datetime | None = None
) -> list[Path]:
    """Seal everything written before now: ask live writers, wait for them, seal dead writers' segments.

    Used before a pipeline run so every event acknowledged before it is loadable. Returns the sealed
    paths of the segments that were open when asked. A live writer that does not answer within
    ``timeout`` seconds keeps its segment open (:func:`wait_for_seal` lists those).
    """
    root = Path(root)
    at = write_seal_request(root, at)
    asked = [p for p in iter_open_segments(root) if (n := SegmentName.parse(p)) and n.started_at < at]
    # Dead writers never answer: seal theirs first so waiting is only for live ones.
    seal_orphans(root)
    wait_for_seal(root, at, timeout=timeout)
    seal_orphans(root)  # a writer that died while we waited
    return sorted(target for p in asked if not p.exists() and (target := _sealed_name(p)).exists())


def _sealed_name(path: Path) -> Path:
    return path.with_name(path.name[: -len(OPEN_SUFFIX)] + SEALED_SUFFIX)


def read_seal_request(root: str | os.PathLike[str]) -> datetime | None:
    """The time of the latest seal request, or ``None``."""
    try:
        return parse_iso((Path(root) / SEAL_REQUEST_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def wait_for_seal(root: str | os.PathLike[str], before: datetime, timeout: float = 3.0) -> list[Path]:
    """Wait until no live writer holds a segment opened before ``before``; return those still open."""
    deadline = time.monotonic() + timeout
    while True:
        pending = [
            p for p in iter_open_segments(root) if (n := SegmentName.parse(p)) and n.started_at < before
        ]
        if not pending or time.monotonic() >= deadline:
            return pending
        time.sleep(0.1)


# ------------------------------------------------------------------------------------- recovery and reading


def _pid_alive(pid: int, started_at: datetime | None = None) -> bool:
    """Whether ``pid`` is alive and could be the process that opened a segment at ``started_at``."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # Exists, owned by someone else.
    if started_at is not None:
        proc_start = _process_start_time(pid)
        # A process that started after the segment was opened cannot have written it: the pid was reused.
        if proc_start is not None and proc_start > started_at + timedelta(seconds=2):
            return False
    return True


def _process_start_time(pid: int) -> datetime | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = int(fields[19])  # field 22 of /proc/<pid>/stat: start time in clock ticks after boot
        btime = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime")
        )
        return datetime.fromtimestamp(btime + ticks / os.sysconf("SC_CLK_TCK"), UTC)
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def iter_open_segments(root: str | os.PathLike[str]) -> Iterator[Path]:
    """Open (``.jsonl.open``) segments, sorted by path."""
    yield from sorted(Path(root).glob(f"date=*/hour=*/*{OPEN_SUFFIX}"))


def iter_sealed_segments(root: str | os.PathLike[str]) -> Iterator[Path]:
    """Sealed (``.jsonl``) segments sorted by path; never an open one."""
    yield from sorted(p for p in Path(root).glob(f"date=*/hour=*/*{SEALED_SUFFIX}") if p.is_file())


def seal_orphans(root: str | os.PathLike[str], *, host: str | None = None) -> list[Path]:
    """Seal open segments of this host whose writer process is dead; return the sealed paths.

    Segments of other hosts are left alone (their pids mean nothing here): :func:`seal_idle` handles them.
    Content is never changed, so a torn last line stays for the reader to report.
    """
    host = _safe_host(host) if host else default_host()
    sealed = []
    for path in iter_open_segments(root):
        name = SegmentName.parse(path)
        if name is None or name.host != host or _pid_alive(name.pid, name.started_at):
            continue
        try:
            sealed.append(_seal_path(path))
        except FileNotFoundError:
            continue  # Sealed concurrently by another recoverer.
        except OSError as exc:
            raise LandingError(f"cannot seal orphan segment {path}: {exc}") from exc
    return sealed


def seal_idle(root: str | os.PathLike[str], *, before: datetime) -> list[Path]:
    """Seal open segments of hours that ended at or before ``before``, if their writer is dead (this host)
    or the hour ended more than an hour before ``before`` (a stuck writer, or one on another host)."""
    before = before.astimezone(UTC)
    here = default_host()
    sealed = []
    for path in iter_open_segments(root):
        hour = segment_hour(path)
        name = SegmentName.parse(path)
        if hour is None or name is None or hour + timedelta(hours=1) > before:
            continue
        writer_dead = name.host == here and not _pid_alive(name.pid, name.started_at)
        if not writer_dead and hour + timedelta(hours=2) > before:
            continue
        try:
            sealed.append(_seal_path(path))
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise LandingError(f"cannot seal idle segment {path}: {exc}") from exc
    return sealed


@dataclass
class LandingLine:
    """One line of a segment: ``record`` when valid, else ``error`` says why not; ``raw`` is the text."""

    segment: Path
    line_no: int
    record: dict[str, Any] | None
    error: str | None
    raw: str


def read_segment(path: str | os.PathLike[str]) -> Iterator[LandingLine]:
    """Every line of a segment, 1-based; torn, malformed or invalid lines come with a reason."""
    path = Path(path)
    with open(path, "rb") as fh:
        for line_no, data in enumerate(fh, start=1):
            torn = not data.endswith(b"\n")
            body = data[:-1] if not torn else data
            try:
                raw = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raw = body.decode("utf-8", errors="replace")
                reason = _torn_reason(torn, f"invalid UTF-8: {exc.reason}")
                yield LandingLine(path, line_no, None, reason, raw)
                continue
            if torn:
                # Not acknowledged to any client (the newline is written with the line, then fsynced).
                yield LandingLine(path, line_no, None, _torn_reason(True, None, raw), raw)
                continue
            if not raw.strip():
                yield LandingLine(path, line_no, None, "empty line", raw)
                continue
            try:
                obj = json.loads(raw)
            except ValueError as exc:
                yield LandingLine(path, line_no, None, f"invalid JSON: {exc}", raw)
                continue
            reason = validate_record(obj)
            if reason is not None:
                yield LandingLine(path, line_no, None, reason, raw)
            else:
                yield LandingLine(path, line_no, obj, None, raw)


def _torn_reason(torn: bool, reason: str | None, raw: str = "") -> str:
    if not torn:
        return reason or ""
    base = f"torn line: no trailing newline ({len(raw.encode())} bytes; the writer stopped mid-write)"
    return f"{base}; {reason}" if reason else base


@dataclass
class SegmentInfo:
    """A segment as ``turret landing status`` shows it."""

    path: Path
    hour: datetime | None
    sealed: bool
    host: str | None
    pid: int | None
    writer_alive: bool | None
    bytes: int
    lines: int


def describe_segments(root: str | os.PathLike[str]) -> list[SegmentInfo]:
    """Every segment, open and sealed, with its size and line count."""
    here = default_host()
    infos = []
    paths = sorted([*iter_open_segments(root), *iter_sealed_segments(root)])
    for path in paths:
        name = SegmentName.parse(path)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            continue  # Sealed while we looked.
        lines = data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)
        alive = None
        if name is not None and not name.sealed and name.host == here:
            alive = _pid_alive(name.pid, name.started_at)
        infos.append(
            SegmentInfo(
                path=path,
                hour=segment_hour(path),
                sealed=path.name.endswith(SEALED_SUFFIX),
                host=name.host if name else None,
                pid=name.pid if name else None,
                writer_alive=alive,
                bytes=len(data),
                lines=lines,
            )
        )
    return infos
