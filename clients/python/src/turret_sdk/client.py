"""The Turret client: ``track()`` queues and returns; a background thread sends batches to ``/track/batch``.

Delivery guarantees, in the order they matter to an app:

- ``track()`` never waits on the network and never raises for a delivery problem. It costs a few
  microseconds: it stamps the event with an id and the time and puts it on a bounded queue.
- Every event carries a client-side ``event_id`` (``evt_`` + 32 hex digits), so a batch sent again after a
  timeout, a reset connection or a server crash is stored once (the server answers a repeat as it did the
  first time, and the warehouse keeps one event per ``event_id``).
- A batch that got no answer, a 5xx or a 429 is kept and sent again: exponential backoff with full jitter,
  or the server's ``Retry-After`` when it gave one. A 4xx other than 429 is the event's own fault: it is
  reported (log, ``stats().rejected``, ``on_rejected``) and never sent again. Within a batch answered 200,
  events refused for the quota (``RATE_LIMIT_EXCEEDED``) wait for the quota period to reset; the others are
  settled.
- After ``breaker_threshold`` consecutive failures the circuit breaker opens: nothing is sent for
  ``breaker_cooldown`` seconds, then one trial request decides. Events wait in the queue meanwhile; when the
  queue is full, new events are dropped (counted, with a warning) or, with ``block=True``, ``track()`` waits.
"""

from __future__ import annotations

import atexit
import itertools
import json
import logging
import os
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from queue import Empty, SimpleQueue
from typing import TYPE_CHECKING, Any

from .retry import RETRYABLE_STATUSES, CircuitBreaker, CircuitOpenError, backoff_delay, parse_retry_after
from .transport import Transport, TransportError

if TYPE_CHECKING:
    from .conversation import Conversation

logger = logging.getLogger("turret_sdk")

BATCH_PATH = "/track/batch"
# The server's own default limits (docs/api.md): at most 500 events and 1,048,576 bytes per batch. The client
# stays under them by default; a server configured lower answers 400/413, which the client handles.
DEFAULT_MAX_BATCH_BYTES = 1_000_000
RATE_LIMITED = "RATE_LIMIT_EXCEEDED"
_DROP_WARNING_INTERVAL = 10.0
# While events wait, the senders look for a full batch this often; track() wakes them only for a backlog of
# this many batches (an idle sender sleeps flush_interval).
_POLL_SECONDS = 0.005
_WAKE_BATCHES = 4

Metadata = Mapping[str, str | int | float | bool | None]
Timestamp = datetime | str | float | int | None


@dataclass(frozen=True)
class TrackResult:
    """An event the server stored, with the ids it stored it under (generated ones included)."""

    event_id: str
    session_id: str
    user_id: str


@dataclass(frozen=True)
class Rejection:
    """An event the server refused for good (or the client could not encode); it is never sent again."""

    event_id: str
    status: int | None
    code: str
    error: str


@dataclass(frozen=True)
class ClientStats:
    """Counters since the client started (or since a fork, in the child)."""

    delivered: int
    rejected: int
    dropped: int
    retries: int
    requests: int
    queued: int
    breaker: str
    breaker_opened: int


class TurretError(Exception):
    """A synchronous send failed: the server refused the event, or it could not be delivered in time."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class _Marker:
    """A flush or stop request travelling through the queue behind the events tracked before it."""

    __slots__ = ("done", "stop")

    def __init__(self, stop: bool = False) -> None:
        self.done = threading.Event()
        self.stop = stop


class _EventIds:
    """``evt_`` + 32 hex digits: 80 random bits for this client (and process) + a 48-bit counter."""

    def __init__(self) -> None:
        self._prefix = "evt_" + secrets.token_hex(10)
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):012x}"


_clients: weakref.WeakSet[Client] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for client in list(_clients):
        client._reset_after_fork()


def _shutdown_at_exit() -> None:
    for client in list(_clients):
        if not client._closed:
            client.shutdown(timeout=client.shutdown_timeout)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_shutdown_at_exit)


class Client:
    """Send events to a Turret ingest API.

    >>> client = Client("tk_...", host="http://localhost:8000")
    >>> client.track("user_message", {"prompt": "How do I reset my password?"}, session_id="conv_1")

    Args:
        api_key: the project's API key (``turret projects create`` prints it).
        host: the ingest API's base URL.
        batch_size: events per request (the server takes at most 500).
        flush_interval: seconds an event waits at most before its batch is sent.
        max_queue_size: events held in memory (queued and not yet sent); beyond it new events are dropped, or
            ``track()`` waits when ``block`` is true.
        block: wait in ``track()`` for room in the queue instead of dropping.
        timeout: seconds to wait for one HTTP answer.
        backoff_base, backoff_max: the first retry waits up to ``backoff_base`` seconds, each next one up to
            twice as long, never more than ``backoff_max`` (unless the server's ``Retry-After`` says longer).
        breaker_threshold, breaker_cooldown: consecutive failures that open the circuit breaker, and seconds
            before it lets a trial request through.
        max_batch_bytes: the most bytes one request body may hold.
        max_in_flight: batches sent at once, each from its own thread and connection (a server with several
            worker processes stores them in parallel).
        sync: send each event in ``track()`` at once (serverless functions, which may freeze after returning).
        send_retries: retries of a synchronous send before it fails.
        shutdown_timeout: seconds the exit hook waits to deliver what is queued.
        on_delivered, on_rejected: called from the sending thread with each batch's stored events and
            rejected events.
    """

    def __init__(
        self,
        api_key: str,
        host: str = "http://localhost:8000",
        *,
        batch_size: int = 100,
        flush_interval: float = 0.5,
        max_queue_size: int = 10_000,
        block: bool = False,
        timeout: float = 10.0,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        breaker_threshold: int = 5,
        breaker_cooldown: float = 30.0,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        max_in_flight: int = 2,
        sync: bool = False,
        send_retries: int = 2,
        shutdown_timeout: float = 5.0,
        on_delivered: Callable[[list[TrackResult]], None] | None = None,
        on_rejected: Callable[[list[Rejection]], None] | None = None,
    ) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ValueError("api_key is required: the project's API key")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if flush_interval <= 0:
            raise ValueError(f"flush_interval must be > 0, got {flush_interval}")
        if max_queue_size < 1:
            raise ValueError(f"max_queue_size must be >= 1, got {max_queue_size}")
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        if send_retries < 0:
            raise ValueError(f"send_retries must be >= 0, got {send_retries}")
        Transport(host, api_key, timeout)  # checks the URL now, not in the sending thread
        self.api_key = api_key
        self.host = host
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_queue_size = max_queue_size
        self.block = block
        self.timeout = timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_batch_bytes = max_batch_bytes
        self.max_in_flight = max_in_flight
        self._wake_at = min(_WAKE_BATCHES * batch_size, max_queue_size)
        self.sync = sync
        self.send_retries = send_retries
        self.shutdown_timeout = shutdown_timeout
        self.on_delivered = on_delivered
        self.on_rejected = on_rejected
        self.breaker = CircuitBreaker(breaker_threshold, breaker_cooldown)
        self._init_state()
        _clients.add(self)

    def _init_state(self) -> None:
        """Everything a forked child must not share with its parent: queue, locks, thread, ids, counters."""
        self._queue: SimpleQueue[Any] = SimpleQueue()
        self._slots = threading.Semaphore(self.max_queue_size)
        self._wake = threading.Event()
        self._abort = threading.Event()
        self._thread: threading.Thread | None = None  # the first sender; the others are in _threads
        self._threads: list[threading.Thread] = []
        self._thread_lock = threading.Lock()
        self._take_lock = threading.Lock()  # batches are cut in queue order, one sender at a time
        self._settled = threading.Condition()
        self._next_batch = 0
        self._unsettled: set[int] = set()  # numbers of the batches taken and not yet settled
        self._stats_lock = threading.Lock()
        self._local = threading.local()
        self._ids = _EventIds()
        self._closed = False
        self._delivered = self._rejected = self._dropped = self._retries = self._requests = 0
        self._last_drop_warning = 0.0
        self.breaker = CircuitBreaker(self.breaker.threshold, self.breaker.cooldown)

    def _reset_after_fork(self) -> None:
        # The parent's queued events stay the parent's to send; the child starts empty, with fresh locks
        # (one may have been held by the parent's sending thread at the fork) and its own id prefix.
        self._init_state()

    # ------------------------------------------------------------------------------------------ tracking

    def track(
        self,
        name: str,
        metadata: Metadata,
        session_id: str | None = None,
        user_id: str | None = None,
        event_id: str | None = None,
        timestamp: Timestamp = None,
    ) -> str:
        """Queue one event and return its ``event_id`` at once (in ``sync`` mode: send it first).

        ``metadata`` is a flat mapping of strings, numbers, booleans and nulls with at least one non-blank
        string (the text Turret clusters). ``timestamp`` defaults to now: a ``datetime`` (naive means UTC),
        an ISO 8601 string or epoch seconds. ``session_id``/``user_id`` are generated by the server when left
        out. Delivery problems never raise here: see :meth:`stats`.
        """
        if type(metadata) is not dict:
            if not isinstance(metadata, Mapping):
                raise TypeError(f"metadata must be a mapping, got {type(metadata).__name__}")
        if event_id is None:
            event_id = self._ids.next()
        if timestamp is None:
            timestamp = time.time()
        if self.sync:
            try:
                self.send(name, metadata, session_id, user_id, event_id, timestamp)
            except (TurretError, CircuitOpenError) as exc:
                logger.warning("turret: event %s not delivered: %s", event_id, exc)
                if not (isinstance(exc, TurretError) and exc.code is not None):  # refusals count as rejected
                    with self._stats_lock:
                        self._dropped += 1
            return event_id
        if self._closed or not self._slots.acquire(self.block):
            self._count_drop()
            return event_id
        self._queue.put((name, dict(metadata), session_id, user_id, event_id, timestamp))
        if self._thread is None:
            self._start_thread()
        if self._queue.qsize() >= self._wake_at and not self._wake.is_set():
            self._wake.set()  # a backlog while the senders sleep; otherwise they poll
        return event_id

    def send(
        self,
        name: str,
        metadata: Metadata,
        session_id: str | None = None,
        user_id: str | None = None,
        event_id: str | None = None,
        timestamp: Timestamp = None,
    ) -> TrackResult:
        """Send one event now and return the ids it was stored under; raise :class:`TurretError` if refused
        or not delivered after ``send_retries`` retries, :class:`CircuitOpenError` while the breaker is open.
        """
        if event_id is None:
            event_id = self._ids.next()
        if timestamp is None:
            timestamp = time.time()
        entry = (name, dict(metadata), session_id, user_id, event_id, timestamp)
        transport = getattr(self._local, "transport", None)
        if transport is None:
            transport = self._local.transport = Transport(self.host, self.api_key, self.timeout)
        event = _event(entry)
        try:
            _dumps(event)
        except (TypeError, ValueError) as exc:
            error = f"cannot be encoded as JSON: {exc}"
            self._reject([Rejection(event_id, None, "INVALID_REQUEST", error)])
            raise TurretError(f"event {event_id} {error}", None, "INVALID_REQUEST") from None
        outcome = self._deliver(transport, [event], sync=True)
        if outcome.delivered:
            return outcome.delivered[0]
        if outcome.rejected:
            rejection = outcome.rejected[0]
            message = f"event {event_id} refused: {rejection.error}"
            raise TurretError(message, rejection.status, rejection.code)
        raise TurretError(f"event {event_id} not delivered: {outcome.last_error}", outcome.last_status)

    def conversation(self, session_id: str | None = None, user_id: str | None = None) -> Conversation:
        """A helper that sends every event of one conversation under one ``session_id`` and ``user_id``."""
        from .conversation import Conversation

        return Conversation(self, session_id, user_id)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event tracked before this call is settled (stored, rejected or dropped).

        Returns ``False`` if ``timeout`` seconds passed first (the server is down, say).
        """
        if self._thread is None or not any(t.is_alive() for t in self._threads):
            return self._queue.empty()
        marker = _Marker()
        self._queue.put(marker)
        self._wake.set()
        return marker.done.wait(timeout)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Deliver what is queued (waiting at most ``timeout`` seconds), then stop the sending thread.

        Events still undelivered when the time is up are counted as dropped. Later ``track()`` calls drop.
        Returns ``True`` when everything tracked was settled. Called at interpreter exit for every client.
        """
        if self._closed:
            return self._queue.empty()
        self._closed = True
        with self._thread_lock:
            threads = list(self._threads)
        if not threads:
            return True
        markers = [_Marker(stop=True) for _ in threads]
        for marker in markers:
            self._queue.put(marker)
        self._wake.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in threads):
            self._abort.set()
            self._wake.set()
            for thread in threads:
                thread.join(self.timeout + 1)
        left = self._discard_queue()
        aborted = self._abort.is_set()  # the time ran out: what was in flight counts as dropped
        alive = any(t.is_alive() for t in threads)
        return not aborted and not alive and all(m.done.is_set() for m in markers) and left == 0

    def close(self) -> None:
        """Same as :meth:`shutdown` with the client's ``shutdown_timeout``."""
        self.shutdown(self.shutdown_timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> ClientStats:
        """A snapshot of the delivery counters."""
        with self._stats_lock:
            return ClientStats(
                delivered=self._delivered,
                rejected=self._rejected,
                dropped=self._dropped,
                retries=self._retries,
                requests=self._requests,
                queued=self._queue.qsize(),
                breaker=self.breaker.state,
                breaker_opened=self.breaker.times_opened,
            )

    # ----------------------------------------------------------------------------------- the sending thread

    def _start_thread(self) -> None:
        with self._thread_lock:
            if self._thread is None:
                for n in range(self.max_in_flight):
                    thread = threading.Thread(target=self._run, name=f"turret-sdk-sender-{n}", daemon=True)
                    thread.start()
                    self._threads.append(thread)
                self._thread = self._threads[0]

    def _count_drop(self, n: int = 1) -> None:
        with self._stats_lock:
            self._dropped += n
            dropped = self._dropped
            now = time.monotonic()
            warn = now - self._last_drop_warning >= _DROP_WARNING_INTERVAL
            if warn:
                self._last_drop_warning = now
        if warn:
            reason = ("the client is shut down" if self._closed
                      else f"the queue is full ({self.max_queue_size} events)")
            logger.warning("turret: dropping events: %s; %d dropped so far", reason, dropped)

    def _discard_queue(self) -> int:
        """Count what an aborted shutdown left in the queue as dropped; release any flush waiters."""
        left = 0
        while True:
            try:
                entry = self._queue.get_nowait()
            except Empty:
                break
            if isinstance(entry, _Marker):
                entry.done.set()
            else:
                left += 1
        if left:
            self._count_drop(left)
        return left

    def _run(self) -> None:
        transport = Transport(self.host, self.api_key, self.timeout)
        poll = min(self.flush_interval, _POLL_SECONDS)
        last_cut = time.monotonic()
        try:
            while True:
                # Idle: sleep the whole interval. With events waiting: look every few ms, so that track()
                # need not wake this thread for each batch (a wake is a syscall on the app's thread).
                woken = self._wake.wait(poll if self._queue.qsize() else self.flush_interval)
                self._wake.clear()
                due = woken or time.monotonic() - last_cut >= self.flush_interval
                while True:
                    if not due and self._queue.qsize() < self.batch_size:
                        break  # not a full batch yet, and its interval has not run out
                    entries, number, marker, upto = self._take()
                    if entries:
                        last_cut = time.monotonic()
                        try:
                            if self._abort.is_set():
                                self._count_drop(len(entries))
                            else:
                                self._send_batch(transport, entries)
                        finally:
                            with self._settled:
                                self._unsettled.discard(number)
                                self._settled.notify_all()
                    if marker is not None:
                        if marker.stop:
                            marker.done.set()
                            return
                        self._wait_settled(upto)
                        marker.done.set()
                        continue
                    if len(entries) < self.batch_size:
                        break  # a partial batch went out: wait for more events or the interval
        except Exception:  # noqa: BLE001 - a bug here must not take the app down; it is logged loudly
            logger.exception("turret: a sending thread stopped")
        finally:
            transport.close()

    def _wait_settled(self, upto: int) -> None:
        """Wait until every batch numbered below ``upto`` is settled (a flush marker's promise)."""
        with self._settled:
            self._settled.wait_for(lambda: not any(n < upto for n in self._unsettled) or self._abort.is_set())

    def _take(self) -> tuple[list[tuple[Any, ...]], int, _Marker | None, int]:
        """Cut the next batch: up to ``batch_size`` queued events, stopping at a flush/stop marker.

        Returns the events, the batch's number, the marker met and the number of batches cut so far.
        """
        entries: list[tuple[Any, ...]] = []
        marker = None
        get = self._queue.get_nowait
        with self._take_lock:
            while len(entries) < self.batch_size:
                try:
                    entry = get()
                except Empty:
                    break
                if type(entry) is _Marker:
                    marker = entry
                    break
                entries.append(entry)
            number = self._next_batch
            if entries:
                self._next_batch += 1
                with self._settled:
                    self._unsettled.add(number)
            upto = self._next_batch
        if entries:
            self._slots.release(len(entries))
        return entries, number, marker, upto

    def _send_batch(self, transport: Transport, entries: list[tuple[Any, ...]]) -> None:
        """Encode queued events (rejecting any that are not JSON) and deliver them."""
        events = [_event(entry) for entry in entries]
        try:
            _dumps(events)
        except (TypeError, ValueError):  # find the culprits; the rest go on
            good = []
            for event in events:
                try:
                    _dumps(event)
                except (TypeError, ValueError) as exc:
                    error = f"cannot be encoded as JSON: {exc}"
                    self._reject([Rejection(event["event_id"], None, "INVALID_REQUEST", error)])
                else:
                    good.append(event)
            events = good
        if events:
            self._deliver(transport, events, sync=False)

    def _reject(self, rejections: list[Rejection]) -> None:
        with self._stats_lock:
            self._rejected += len(rejections)
        for r in rejections[:3]:
            logger.warning("turret: event %s rejected (%s %s): %s", r.event_id, r.status, r.code, r.error)
        if self.on_rejected is not None:
            _call(self.on_rejected, rejections)

    def _sleep(self, seconds: float, sync: bool) -> bool:
        """Wait before a retry; ``False`` when an aborted shutdown cut the wait short."""
        if sync:
            time.sleep(seconds)
            return True
        return not self._abort.wait(seconds)

    def _deliver(self, transport: Transport, batch: list[dict[str, Any]], *, sync: bool) -> _Outcome:
        """Send ``batch`` until every event is stored or rejected (sync: until ``send_retries`` run out)."""
        outcome = _Outcome()
        pending = batch
        failures = 0
        while pending:
            if not self.breaker.allow():
                if sync:
                    raise CircuitOpenError(
                        f"turret: circuit breaker open after {self.breaker.threshold} consecutive failures; "
                        f"retrying in {self.breaker.wait_time():.1f} s"
                    )
                if not self._sleep(max(0.05, self.breaker.wait_time()), sync):
                    break
                continue
            body = _dumps({"events": pending})
            if len(body) > self.max_batch_bytes and len(pending) > 1:
                half = len(pending) // 2
                for part in (pending[:half], pending[half:]):
                    sub = self._deliver(transport, part, sync=sync)
                    outcome.delivered += sub.delivered
                    outcome.rejected += sub.rejected
                return outcome
            with self._stats_lock:
                self._requests += 1
            delay: float | None = None
            try:
                response = transport.post(BATCH_PATH, body)
            except TransportError as exc:
                self.breaker.record_failure()
                outcome.last_error, outcome.last_status = str(exc), None
                failures += 1
            else:
                status = response.status
                results = response.body.get("results") if isinstance(response.body, dict) else None
                if status == 200 and isinstance(results, list) and len(results) == len(pending):
                    self.breaker.record_success()
                    failures = 0
                    pending = self._settle(pending, results, outcome)
                    if not pending:
                        break
                    # Refused for the quota within an accepted batch: wait for the period to reset.
                    outcome.last_error, outcome.last_status = "the project's event limit is reached", 429
                    delay = _reset_in(response.headers)
                    failures += 1
                elif status == 413 and len(pending) > 1:
                    self.breaker.record_success()
                    half = len(pending) // 2
                    for part in (pending[:half], pending[half:]):
                        sub = self._deliver(transport, part, sync=sync)
                        outcome.delivered += sub.delivered
                        outcome.rejected += sub.rejected
                    return outcome
                elif status in RETRYABLE_STATUSES:
                    if status == 429:
                        self.breaker.record_success()  # the server is well; the quota is used up
                    else:
                        self.breaker.record_failure()
                    delay = parse_retry_after(response.headers.get("retry-after"))
                    outcome.last_error, outcome.last_status = _error_text(response), status
                    failures += 1
                else:
                    self.breaker.record_success()
                    code = response.body.get("code", "") if isinstance(response.body, dict) else ""
                    rejections = [Rejection(event["event_id"], status, code or f"HTTP_{status}",
                                            _error_text(response)) for event in pending]
                    outcome.rejected += rejections
                    self._reject(rejections)
                    if status == 401:
                        logger.error("turret: the API key was refused (401); events are not being stored")
                    break
            if sync and failures > self.send_retries:
                break
            if delay is None:
                delay = backoff_delay(failures, self.backoff_base, self.backoff_max)
            if sync and delay > self.backoff_max:
                break  # a serverless call must not wait out a quota period
            with self._stats_lock:
                self._retries += 1
            if not self._sleep(delay, sync):
                break
        if pending and not sync and self._abort.is_set():
            self._count_drop(len(pending))
        return outcome

    def _settle(self, pending: list[dict[str, Any]], results: list[Any], outcome: _Outcome) -> list[Any]:
        """Record a 200 answer's per-event results; return the events to send again (quota refusals)."""
        again = []
        delivered: list[TrackResult] = []
        rejected: list[Rejection] = []
        for item, result in zip(pending, results, strict=True):
            if not isinstance(result, dict):
                error = f"unreadable result {result!r}"
                rejected.append(Rejection(item["event_id"], 200, "INVALID_RESPONSE", error))
            elif result.get("success"):
                delivered.append(TrackResult(result["event_id"], result["session_id"], result["user_id"]))
            elif result.get("code") == RATE_LIMITED:
                again.append(item)
            else:
                code, error = str(result.get("code")), str(result.get("error"))
                rejected.append(Rejection(item["event_id"], 400, code, error))
        if delivered:
            with self._stats_lock:
                self._delivered += len(delivered)
            outcome.delivered += delivered
            if self.on_delivered is not None:
                _call(self.on_delivered, delivered)
        if rejected:
            outcome.rejected += rejected
            self._reject(rejected)
        return again


class _Outcome:
    __slots__ = ("delivered", "rejected", "last_error", "last_status")

    def __init__(self) -> None:
        self.delivered: list[TrackResult] = []
        self.rejected: list[Rejection] = []
        self.last_error = ""
        self.last_status: int | None = None


class _Clock:
    """Epoch seconds to ISO 8601 UTC; the date and time are formatted once per second (the costly part)."""

    def __init__(self) -> None:
        self._cached = (-1, "")  # (second, its text), replaced as one object: threads never see a mix

    def text(self, value: float) -> str:
        second = int(value)
        cached = self._cached
        if cached[0] != second:
            cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
            self._cached = cached
        return f"{cached[1]}.{min(999_999, round((value - second) * 1e6)):06d}Z"


_clock = _Clock()


def _timestamp_text(value: Timestamp) -> str:
    if isinstance(value, float | int) and not isinstance(value, bool):
        if value >= 0:
            return _clock.text(value)
        return datetime.fromtimestamp(value, timezone.utc).isoformat()
    if isinstance(value, datetime):
        return value.isoformat()
    return value  # type: ignore[return-value]  # a string is sent as given; the server checks it


def _event(entry: tuple[Any, ...]) -> dict[str, Any]:
    """The wire form of a queued ``(name, metadata, session_id, user_id, event_id, timestamp)``."""
    name, metadata, session_id, user_id, event_id, timestamp = entry
    event: dict[str, Any] = {"name": name, "metadata": metadata, "event_id": event_id,
                             "timestamp": _timestamp_text(timestamp)}
    if session_id is not None:
        event["session_id"] = session_id
    if user_id is not None:
        event["user_id"] = user_id
    return event


def _dumps(value: Any) -> bytes:
    """Strict JSON (no NaN or Infinity: the server refuses them), ASCII-escaped (the encoder's fast path)."""
    return json.dumps(value, allow_nan=False, separators=(",", ":")).encode()


def _reset_in(headers: dict[str, str]) -> float | None:
    """Seconds to the quota period's end from ``X-RateLimit-Reset`` (epoch seconds), if present."""
    retry_after = parse_retry_after(headers.get("retry-after"))
    if retry_after is not None:
        return retry_after
    reset = headers.get("x-ratelimit-reset")
    if reset is None or not reset.isdigit():
        return None
    return max(1.0, int(reset) - time.time())


def _error_text(response: Any) -> str:
    body = response.body
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return f"HTTP {response.status}"


def _call(callback: Callable[[Any], None], value: Any) -> None:
    try:
        callback(value)
    except Exception:  # noqa: BLE001 - the app's callback must not stop delivery
        logger.exception("turret: callback %r failed", callback)
