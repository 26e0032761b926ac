"""A published snapshot of the fixture marts (tests/fixtures/warehouse.py: project acme, topics Password
reset, Pricing plans, Billing questions), a control-plane project, and the dashboard over them."""

from __future__ import annotations

import re

import duckdb
import pytest
from turret.settings import Settings

from tests.fixtures import warehouse as fx

PASSWORD = "correct horse battery staple"


def publish_fixture(settings: Settings) -> None:
    from turret.publish import publish

    fx.built_warehouse(settings.warehouse)
    con = duckdb.connect(str(settings.warehouse))
    try:
        publish(settings, con)
    finally:
        con.close()


@pytest.fixture(scope="module")
def ui_settings(tmp_path_factory):
    from turret.controlplane import ControlPlane

    settings = Settings(home=tmp_path_factory.mktemp("ui-home"), ui_password=PASSWORD)
    publish_fixture(settings)
    cp = ControlPlane.from_settings(settings)
    try:
        cp.create_project("acme", "pro")
    finally:
        cp.dispose()
    return settings


@pytest.fixture
def app(ui_settings):
    from turret.ui import create_app

    app = create_app(ui_settings, {"TESTING": True})
    yield app
    app.extensions["turret_marts"].close()
    app.extensions["turret_control_plane"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


def csrf_token(client, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def sign_in(client, password: str = PASSWORD):
    return client.post("/login", data={"password": password, "csrf_token": csrf_token(client)})


@pytest.fixture
def signed_in(client):
    assert sign_in(client).status_code == 302
    return client
