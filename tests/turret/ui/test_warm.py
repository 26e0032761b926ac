"""The snapshot watcher fills the dashboard's per-snapshot caches when the pipeline publishes."""

from __future__ import annotations

import os
import time

from turret.settings import Settings
from turret.ui import marts
from turret.ui.warm import SnapshotWatcher, warm

from tests.fixtures import warehouse as fx
from tests.turret.ui.conftest import publish_fixture


def cached_keys(reader: marts.MartsReader) -> set[tuple]:
    return {key[1:] for key in reader._cache}


def test_warm_computes_what_the_first_page_views_would(ui_settings):
    reader = marts.MartsReader(ui_settings.published)
    try:
        scopes = warm(reader)
        expected = [(p["project_id"], field) for p in marts.projects(reader)
                    for field in marts.text_fields(reader, p["project_id"])]
        assert scopes == len(expected) >= 2
        keys = cached_keys(reader)
        for project_id, field in expected:
            assert {("options", project_id), ("field_summary", project_id), ("totals", project_id, field),
                    ("has_outcomes", project_id, field), ("map", project_id, field)} <= keys
    finally:
        reader.close()


def test_the_watcher_warms_each_new_snapshot_and_stops_with_the_reader(tmp_path):
    settings = Settings(home=tmp_path / "home")
    reader = marts.MartsReader(settings.published)
    watcher = SnapshotWatcher(reader, interval=0.05)
    watcher.start()
    try:
        time.sleep(0.2)
        assert watcher.is_alive() and watcher.warmed is None  # nothing published yet: nothing to do
        publish_fixture(settings)
        current = os.path.realpath(reader.link)
        deadline = time.monotonic() + 60
        while watcher.warmed != current and time.monotonic() < deadline:
            time.sleep(0.05)
        assert watcher.warmed == current
        assert ("options", fx.ACME) in cached_keys(reader)
    finally:
        reader.close()
        watcher.join(timeout=10)
    assert not watcher.is_alive()


def test_closing_waits_for_a_query_still_running(ui_settings):
    """DuckDB refuses to close a connection busy in another thread (the watcher's): close() waits for it,
    and no new query starts once it was called."""
    import threading

    import pytest

    reader = marts.MartsReader(ui_settings.published)
    cursor = reader.cursor()
    started = threading.Event()

    def long_query():
        started.set()
        cursor.execute("select count(*) from range(400000000) a").fetchall()

    worker = threading.Thread(target=long_query)
    worker.start()
    started.wait()
    time.sleep(0.2)
    reader.close()
    worker.join(timeout=60)
    assert reader.closed and not worker.is_alive()
    with pytest.raises(marts.MartsUnavailable):
        reader.cursor()
