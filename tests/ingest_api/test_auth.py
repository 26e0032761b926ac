"""ingest_api.auth: quota granted for events that were then not stored is given back."""

from __future__ import annotations

import json

import pytest
from turret.landing import LandingError


def post(client, path, body, key):
    return client.post(path, data=json.dumps(body), headers={"X-API-Key": key},
                       content_type="application/json")


@pytest.fixture
def capped(control_plane):
    """A project allowed three events a month (one unit per lease: every grant is a database write)."""
    project, key = control_plane.create_project("capped", "pro", monthly_limit=3)
    return project, key


@pytest.mark.parametrize("path, body", [
    ("/track", {"name": "m", "metadata": {"prompt": "hi"}}),
    ("/track/batch", {"events": [{"name": "m", "metadata": {"prompt": "hi"}}]}),
])
def test_events_answered_503_do_not_consume_quota(app, client, control_plane, capped, landed, monkeypatch,
                                                  path, body):
    project, key = capped
    writer = app.extensions["turret"].writer
    real_append = writer.append

    def disk_full(records):
        raise LandingError("disk full")

    monkeypatch.setattr(writer, "append", disk_full)
    for _ in range(5):
        assert post(client, path, body, key).status_code == 503
    monkeypatch.setattr(writer, "append", real_append)
    assert [post(client, path, body, key).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert len(landed()) == 3
    assert control_plane.accepted(project) == 3
