"""The dashboard reads the published snapshot only: it works with no warehouse at all, follows the stable
path to each new snapshot, and says what to do when nothing is published yet."""

from __future__ import annotations

import shutil

import duckdb
from turret.settings import Settings

from tests.turret.ui.conftest import PASSWORD, sign_in


def test_no_published_marts_is_a_clear_503(tmp_path):
    from turret.ui import create_app

    app = create_app(Settings(home=tmp_path, ui_password=PASSWORD), {"TESTING": True})
    client = app.test_client()
    sign_in(client)
    answer = client.get("/", headers={"Accept": "application/json"})
    assert answer.status_code == 503
    assert "run the pipeline first" in answer.get_json()["message"]
    assert client.get("/projects/").status_code == 200  # the control plane does not need marts


def test_pages_never_need_the_warehouse_and_follow_a_new_snapshot(tmp_path, ui_settings):
    from turret.publish import CURRENT_NAME
    from turret.ui import create_app

    # A home with the published snapshot and no warehouse: the dashboard cannot be reading it.
    home = tmp_path / "home"
    shutil.copytree(ui_settings.published, home / "published", symlinks=True)
    settings = Settings(home=home, ui_password=PASSWORD)
    assert not settings.warehouse.exists()
    app = create_app(settings, {"TESTING": True})
    client = app.test_client()
    sign_in(client)
    assert 'id="kpi-events">15<' in client.get("/").get_data(as_text=True)

    # Publish a new snapshot with one event fewer (as the pipeline would: new file, link switched).
    current = (home / "published" / CURRENT_NAME).resolve()
    newer = current.with_name("turret-29990101T000000000000Z.duckdb")
    shutil.copy(current, newer)
    con = duckdb.connect(str(newer))
    con.execute("delete from marts.fct_events where event_id = (select min(event_id) from marts.fct_events "
                "where field = 'prompt' and project_id = (select project_id from marts.dim_projects "
                "where project_name = 'acme'))")
    con.close()
    link = home / "published" / CURRENT_NAME
    link.unlink()
    link.symlink_to(newer.name)
    assert 'id="kpi-events">14<' in client.get("/").get_data(as_text=True)
    app.extensions["turret_marts"].close()
