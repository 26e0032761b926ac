"""Fixtures for the ingest API: a real app over an isolated TURRET_HOME, a real control plane with
projects and keys, and helpers to read back what landed on disk."""

from __future__ import annotations

import pytest
from turret.settings import Settings


@pytest.fixture
def make_app(turret_home):
    """Build apps over this test's TURRET_HOME; every app is shut down at teardown."""
    from ingest_api import create_app, shutdown

    apps = []

    def factory(**overrides):
        settings = Settings.from_env(**overrides)
        app = create_app({"TESTING": True, "settings": settings})
        apps.append(app)
        return app

    yield factory
    for app in apps:
        shutdown(app)


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def control_plane(app):
    return app.extensions["turret"].control_plane


@pytest.fixture
def project_and_key(control_plane):
    return control_plane.create_project("acme", "pro")


@pytest.fixture
def project(project_and_key):
    return project_and_key[0]


@pytest.fixture
def api_key(project_and_key):
    return project_and_key[1]


@pytest.fixture
def landed(app):
    """Seal the writer and return every landed record, in write order."""
    from turret.landing import iter_sealed_segments, read_segment

    def read() -> list[dict]:
        runtime = app.extensions["turret"]
        if runtime._writer is not None:
            runtime._writer.seal()
        records = []
        for segment in iter_sealed_segments(runtime.settings.landing_root):
            for line in read_segment(segment):
                assert line.error is None, line.error
                records.append(line.record)
        return records

    return read
