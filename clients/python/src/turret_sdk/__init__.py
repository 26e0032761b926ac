"""Turret's Python client: ``Client(api_key, host=...).track(name, metadata)`` sends events in the background.

See docs/clients.md in the Turret repository, or this package's README.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .client import Client, ClientStats, Rejection, TrackResult, TurretError  # noqa: E402
from .conversation import Conversation  # noqa: E402
from .retry import CircuitBreaker, CircuitOpenError  # noqa: E402

__all__ = [
    "CircuitBreaker",
    "CircuitOpenError",
    "Client",
    "ClientStats",
    "Conversation",
    "Rejection",
    "TrackResult",
    "TurretError",
    "__version__",
]
