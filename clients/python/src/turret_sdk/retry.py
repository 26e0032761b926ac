"""When to try again: exponential backoff with full jitter, ``Retry-After``, and a circuit breaker.

Pure logic over numbers and a clock, so the delivery loop (:mod:`turret_sdk.client`) stays readable and these
rules are tested without a network.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

# Statuses worth another try with the same event ids. 429 and 503 carry Retry-After; 500, 502 and 504 are a
# server or proxy failing on its side. Every other 4xx is the request's own fault and is never retried.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


def backoff_delay(attempt: int, base: float, cap: float, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, ...): uniform in [0, min(cap, base * 2**(attempt-1))].

    "Full jitter": clients that failed together do not retry together.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    ceiling = min(cap, base * (2 ** min(attempt - 1, 62)))
    return ceiling * rng()


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), or ``None`` when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


class CircuitOpenError(RuntimeError):
    """A synchronous send was refused without trying: the circuit breaker is open."""


class CircuitBreaker:
    """Closed, open after ``threshold`` consecutive failures, half-open ``cooldown`` seconds later.

    Half-open lets one trial request through: its success closes the breaker, its failure opens it again for
    another ``cooldown``. Thread-safe.
    """

    CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"

    def __init__(
        self, threshold: int = 5, cooldown: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if threshold < 1:
            raise ValueError(f"threshold must be >= 1, got {threshold}")
        if cooldown < 0:
            raise ValueError(f"cooldown must be >= 0, got {cooldown}")
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False
        self.times_opened = 0

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return self.CLOSED
        if self._clock() - self._opened_at >= self.cooldown:
            return self.HALF_OPEN
        return self.OPEN

    def wait_time(self) -> float:
        """Seconds until a request may be tried (0 when closed or half-open)."""
        with self._lock:
            if self._opened_at is None:
                return 0.0
            return max(0.0, self._opened_at + self.cooldown - self._clock())

    def allow(self) -> bool:
        """May a request be sent now? In half-open, only one trial at a time."""
        with self._lock:
            state = self._state()
            if state == self.CLOSED:
                return True
            if state == self.OPEN or self._trial_in_flight:
                return False
            self._trial_in_flight = True
            return True

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_in_flight = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            was_trial = self._trial_in_flight
            self._trial_in_flight = False
            if was_trial or self._failures >= self.threshold:
                if self._opened_at is None or was_trial:
                    self.times_opened += 1
                self._opened_at = self._clock()
