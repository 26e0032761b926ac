"""Warm the dashboard's per-snapshot caches as soon as the pipeline publishes, not on the first page view.

Each page asks for a few things that depend on the snapshot alone and are computed once per snapshot
(``MartsReader.cached``): the filter bar's event names and enum values, a project's text fields and field
summary, the whole field's totals, the topic map's layout. Computed on demand, they made the first request
of each page after a publish the slow one (0.25-0.7 s at 1M events, docs/dashboard.md). ``SnapshotWatcher``
notices a new ``published/turret.duckdb`` within ``interval`` seconds and computes them in the background,
busiest project first, so a person opening the dashboard after a publish gets pages as quick as any other.
"""

from __future__ import annotations

import logging
import os
import threading

from turret.ui import marts
from turret.ui.filters import Filters

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 5.0


def warm(reader: marts.MartsReader) -> int:
    """Compute every per-snapshot value a page's first request would: per project the filter options,
    text fields and field summary; per text field the totals, outcomes, topic choices and map layout.
    Returns the number of (project, field) scopes warmed."""
    scopes = 0
    for project in marts.projects(reader):
        project_id = project["project_id"]
        marts.filter_options(reader, project_id)
        marts.field_summary(reader, project_id)
        for field in marts.text_fields(reader, project_id):
            f = marts.default_scope(reader, Filters(project_id=project_id, field=field))
            marts.event_totals(reader, f)
            marts.has_outcomes(reader, project_id, field)
            marts.topic_choices(reader, f)
            marts.topic_map(reader, f)
            scopes += 1
    return scopes


class SnapshotWatcher(threading.Thread):
    """A daemon thread that warms ``reader`` whenever the published snapshot changes (checked every
    ``interval`` seconds; at once on start). A failure is logged and the pages compute on demand."""

    def __init__(self, reader: marts.MartsReader, interval: float = WATCH_INTERVAL_S) -> None:
        super().__init__(name="turret-ui-snapshot-watcher", daemon=True)
        self.reader = reader
        self.interval = interval
        self.warmed: str | None = None  # the snapshot file last warmed
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self.reader.closed:
            self.check()
            if self._stopped.wait(self.interval):
                return

    def check(self) -> None:
        try:
            current = os.path.realpath(self.reader.link, strict=True)
        except OSError:
            return  # nothing published yet
        if current == self.warmed or self.reader.closed:
            return
        try:
            scopes = warm(self.reader)
            log.info("dashboard caches warmed for %s (%d project fields)", current, scopes)
        except Exception as exc:  # the pages compute on demand; a broken snapshot says so there
            if self.reader.closed:
                return  # shutting down
            log.warning("could not warm the dashboard caches for %s: %s", current, exc)
        self.warmed = current

    def stop(self) -> None:
        self._stopped.set()
