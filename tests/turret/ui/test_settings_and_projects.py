"""Settings → Metadata and Projects & keys write through the control plane, as the CLI does."""

from __future__ import annotations

import re

from turret import field_overrides
from turret.controlplane import ControlPlane

from tests.fixtures import warehouse as fx
from tests.turret.ui.conftest import csrf_token


def test_metadata_override_is_recorded_in_the_control_plane(app, signed_in, ui_settings):
    token = csrf_token(signed_in, "/settings/metadata")
    saved = signed_in.post("/settings/metadata", data={"field": "tier", "type": "text", "csrf_token": token})
    assert saved.status_code == 302
    page = signed_in.get(saved.headers["Location"]).get_data(as_text=True)
    assert "tier: override text. The next pipeline run applies it." in page
    assert "→ text next run" in page
    cp = app.extensions["turret_control_plane"]
    assert field_overrides.load(cp, fx.ACME) == {(fx.ACME, "tier"): "text"}
    cleared = signed_in.post("/settings/metadata",
                             data={"field": "tier", "type": "auto", "csrf_token": token})
    assert cleared.status_code == 302
    assert field_overrides.load(cp, fx.ACME) == {(fx.ACME, "tier"): None}
    # The published marts are not touched: tier is still an enum there.
    assert re.search(r'<td>tier</td>\s*<td class="type">enum\s*</td>',
                     signed_in.get("/settings/metadata").get_data(as_text=True))


def test_metadata_override_refuses_unknown_fields_and_types(signed_in):
    token = csrf_token(signed_in, "/settings/metadata")
    for data, message in (({"field": "nosuch", "type": "text"}, "no metadata field 'nosuch'"),
                          ({"field": "tier", "type": "bool"}, "unknown type 'bool'")):
        answer = signed_in.post("/settings/metadata", data={**data, "csrf_token": token},
                                headers={"Accept": "application/json"})
        assert answer.status_code == 400 and message in answer.get_json()["message"]


def test_create_project_shows_the_key_once_and_it_works(app, signed_in):
    token = csrf_token(signed_in, "/projects/")
    created = signed_in.post("/projects/", data={"name": "newco", "plan": "business", "csrf_token": token})
    assert created.status_code == 200
    key = re.search(r'id="api-key">(trt_\w+)<', created.get_data(as_text=True)).group(1)
    cp: ControlPlane = app.extensions["turret_control_plane"]
    assert cp.authenticate(key).name == "newco"
    listing = signed_in.get("/projects/").get_data(as_text=True)
    assert key not in listing and key[:12] in listing and "newco" in listing


def test_rotate_and_revoke_keys(app, signed_in):
    cp: ControlPlane = app.extensions["turret_control_plane"]
    project, first = cp.create_project("rotco", "pro")
    token = csrf_token(signed_in, "/projects/")
    rotated = signed_in.post(f"/projects/{project.project_id}/rotate", data={"csrf_token": token})
    second = re.search(r'id="api-key">(trt_\w+)<', rotated.get_data(as_text=True)).group(1)
    cp._clear_key_cache()
    assert cp.authenticate(first) is None and cp.authenticate(second).name == "rotco"
    revoked = signed_in.post("/projects/keys/revoke", data={"prefix": second[:12], "csrf_token": token})
    assert revoked.status_code == 302
    cp._clear_key_cache()
    assert cp.authenticate(second) is None


def test_project_errors_are_shown_not_raised(signed_in):
    token = csrf_token(signed_in, "/projects/")
    for data, message in (({"name": "acme", "plan": "pro"}, "already exists"),
                          ({"name": "x1", "plan": "platinum"}, "platinum"),
                          ({"name": "x2", "plan": "pro", "monthly_limit": "lots"}, "not a whole number")):
        answer = signed_in.post("/projects/", data={**data, "csrf_token": token})
        assert answer.status_code == 400 and message in answer.get_data(as_text=True)
    bad = signed_in.post("/projects/keys/revoke", data={"prefix": "nope", "csrf_token": token})
    assert bad.status_code == 400


def test_quota_usage_is_shown(signed_in):
    page = signed_in.get("/projects/").get_data(as_text=True)
    row = r'data-project="acme">.*?<td>pro</td>\s*<td class="num">0</td>\s*<td class="num">1,000,000<'
    assert re.search(row, page, flags=re.S)
