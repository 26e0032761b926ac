"""A per-process memory of recently stored client ``event_id``\\s (``POST /track`` and ``/track/batch``).

The warehouse keeps one event per ``(project_id, event_id)`` whatever happens here: the loader skips every
later copy. This cache only saves work for the common case of an immediate retry (a client that timed out
waiting for a 200 that was on its way) reaching the same server process: the retry is answered exactly as
the first request was (same ``event_id``, ``session_id``, ``user_id``), is not written again and does not
count against the quota. A retry that reaches another process, comes after the entry was evicted, or
races the first request is landed again and de-duplicated by the loader.

Entries are added only after the event was durably written, so a hit always means "on disk".
"""

from __future__ import annotations

import threading
from collections import OrderedDict

# Entries per process (each a few hundred bytes at most); the oldest is evicted first.
MAX_ENTRIES = 10_000


class RecentEvents:
    """A thread-safe LRU of ``(project_id, event_id) -> (session_id, user_id)`` as stored."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], tuple[str, str]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, project_id: str, event_id: str) -> tuple[str, str] | None:
        """The stored ``(session_id, user_id)`` of a recent event, or ``None``."""
        key = (project_id, event_id)
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
            return hit

    def add(self, project_id: str, records: list[dict]) -> None:
        """Remember the stored records that carried a client ``event_id`` (call after the durable write)."""
        entries = self._entries
        with self._lock:
            for record in records:
                key = (project_id, record["event_id"])
                entries[key] = (record["session_id"], record["user_id"])
                entries.move_to_end(key)
            while len(entries) > self.max_entries:
                entries.popitem(last=False)
