"""One conversation's events under one ``session_id`` and ``user_id``, the ones the server returned."""

from __future__ import annotations

import logging
import threading
import uuid
from typing import TYPE_CHECKING

from .retry import CircuitOpenError

if TYPE_CHECKING:
    from .client import Client, Metadata, Timestamp

logger = logging.getLogger("turret_sdk")


class Conversation:
    """Keeps the ids of a conversation so that every message joins the same journey.

    With ids given, every event is queued with them. Without, the first event is sent synchronously and the
    ``session_id``/``user_id`` the server stored it under (generated when missing) are kept for the events
    after it. If that first send cannot be delivered (server down, circuit open), the missing ids are
    generated here (UUID4, as the server would) and the event is queued like any other.
    """

    def __init__(self, client: Client, session_id: str | None = None, user_id: str | None = None) -> None:
        self.client = client
        self.session_id = session_id
        self.user_id = user_id
        self._lock = threading.Lock()

    def track(
        self, name: str, metadata: Metadata, event_id: str | None = None, timestamp: Timestamp = None
    ) -> str:
        """Track one event of this conversation; returns its ``event_id``."""
        if self.session_id is None or self.user_id is None:
            with self._lock:
                if self.session_id is None or self.user_id is None:
                    return self._first(name, metadata, event_id, timestamp)
        return self.client.track(name, metadata, self.session_id, self.user_id, event_id, timestamp)

    def _first(self, name: str, metadata: Metadata, event_id: str | None, timestamp: Timestamp) -> str:
        from .client import TurretError

        event_id = event_id or self.client._ids.next()
        try:
            result = self.client.send(name, metadata, self.session_id, self.user_id, event_id, timestamp)
        except (TurretError, CircuitOpenError) as exc:
            if isinstance(exc, TurretError) and exc.status is not None and 400 <= exc.status < 500 \
                    and exc.status != 429:
                logger.warning("turret: event %s rejected: %s", event_id, exc)
                return event_id
            self.session_id = self.session_id or str(uuid.uuid4())
            self.user_id = self.user_id or str(uuid.uuid4())
            return self.client.track(name, metadata, self.session_id, self.user_id, event_id, timestamp)
        self.session_id, self.user_id = result.session_id, result.user_id
        return result.event_id
