"""Per-process resources: one LandingWriter, ControlPlane and QuotaGate, created on first use.

They are created lazily, not in ``create_app``, because gunicorn imports the app in the master and
forks workers: a writer opened before the fork would be shared by every worker. The owning pid is
recorded so that a copy inherited across a fork is discarded and reopened in the child.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from flask import Flask, current_app
from turret.controlplane import ControlPlane, QuotaGate
from turret.landing import LandingError, LandingWriter
from turret.settings import Settings

from .idempotency import RecentEvents

log = logging.getLogger(__name__)

EXTENSION = "turret"


class Runtime:
    """Holds the process's landing writer, control plane and quota gate."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._writer: Any = None
        self._control_plane: Any = None
        self._quota: Any = None
        # Client event_ids this process stored recently (ingest_api.idempotency).
        self.recent = RecentEvents()
        self.closed = False

    def _check_pid(self) -> None:
        if self._pid != os.getpid():  # inherited across fork: the parent's handles are not ours
            self._writer = self._control_plane = self._quota = None
            self.recent = RecentEvents()
            self._pid = os.getpid()
            self.closed = False

    @property
    def writer(self) -> Any:
        """The process's ``LandingWriter``; raises ``LandingError`` when the store cannot be opened."""
        writer = self._writer
        if writer is not None and self._pid == os.getpid():  # the common case, without the lock
            return writer
        with self._lock:
            self._check_pid()
            if self._writer is None:
                try:
                    self._writer = LandingWriter(
                        self.settings.landing_root, group_commit_ms=self.settings.group_commit_ms
                    )
                except LandingError:
                    raise
                except OSError as exc:
                    raise LandingError(
                        f"cannot open landing store {self.settings.landing_root}: {exc}"
                    ) from exc
            return self._writer

    @property
    def control_plane(self) -> Any:
        control_plane = self._control_plane
        if control_plane is not None and self._pid == os.getpid():
            return control_plane
        with self._lock:
            self._check_pid()
            if self._control_plane is None:
                self._control_plane = ControlPlane.from_settings(self.settings)
            return self._control_plane

    @property
    def quota(self) -> Any:
        quota = self._quota
        if quota is not None and self._pid == os.getpid():
            return quota
        control_plane = self.control_plane
        with self._lock:
            if self._quota is None:
                self._quota = QuotaGate(control_plane)
            return self._quota

    def close(self) -> None:
        """Give back unused quota, seal the open landing segment, dispose the control plane. Idempotent."""
        with self._lock:
            if self._pid != os.getpid():
                return  # never close a parent's handles from a forked child
            quota, writer, control_plane = self._quota, self._writer, self._control_plane
            self._quota = self._writer = self._control_plane = None
            self.closed = True
        for name, obj, method in (
            ("quota gate", quota, "release"),
            ("landing writer", writer, "close"),
            ("control plane", control_plane, "dispose"),
        ):
            if obj is None or not hasattr(obj, method):
                continue
            try:
                getattr(obj, method)()
            except Exception:  # shutdown must go on: one failing resource must not leak the others
                log.exception("closing the %s failed", name)


def get_runtime(app: Flask | None = None) -> Runtime:
    app = app or current_app
    return app.extensions[EXTENSION]
