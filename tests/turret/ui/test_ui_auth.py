"""Sign-in: no page or data without it, a password from the setting or generated once, CSRF on every form,
a Secure HttpOnly session cookie, and a sign-in that only redirects within the site."""

from __future__ import annotations

import os
import stat

import pytest
from turret.settings import Settings

from tests.turret.ui.conftest import PASSWORD, csrf_token, sign_in

PAGES = ["/", "/topics", "/topics/0", "/journeys", "/map", "/settings/metadata", "/projects/"]


@pytest.mark.parametrize("path", PAGES)
def test_no_page_without_sign_in(client, path):
    page = client.get(path)
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    as_json = client.get(path, headers={"Accept": "application/json"})
    assert as_json.status_code == 401 and as_json.get_json()["error"] == "unauthorized"
    assert "Password reset" not in page.get_data(as_text=True)


def test_wrong_password_is_refused(client):
    answer = sign_in(client, "nope")
    assert answer.status_code == 401
    assert "Wrong password" in answer.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_sign_in_sets_a_secure_session_cookie_and_sign_out_ends_it(client):
    answer = sign_in(client)
    assert answer.status_code == 302 and answer.headers["Location"] == "/"
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("turret_ui_session=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/").status_code == 200
    assert client.post("/logout", data={"csrf_token": csrf_token(client, "/")}).status_code == 302
    assert client.get("/").status_code == 302


def test_forms_need_the_csrf_token(client):
    refused = client.post("/login", data={"password": PASSWORD})
    assert refused.status_code == 400 and "CSRF" in refused.get_data(as_text=True)
    assert client.get("/").status_code == 302
    sign_in(client)
    for path, data in (("/projects/", {"name": "x", "plan": "pro"}),
                       ("/settings/metadata", {"field": "tier", "type": "text"}),
                       ("/logout", {})):
        answer = client.post(path, data=data, headers={"Accept": "application/json"})
        assert answer.status_code == 400 and answer.get_json()["error"] == "csrf", path


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)"])
def test_sign_in_never_redirects_off_site(client, target):
    token = csrf_token(client)
    answer = client.post(f"/login?next={target}", data={"password": PASSWORD, "csrf_token": token})
    assert answer.headers["Location"] == "/"


def test_sign_in_returns_to_the_page_asked_for(client):
    token = csrf_token(client)
    answer = client.post("/login?next=/journeys?scope=user", data={"password": PASSWORD, "csrf_token": token})
    assert answer.headers["Location"] == "/journeys?scope=user"


def test_generated_password_is_written_once_with_mode_0600(tmp_path):
    from turret.ui.auth import resolve_password, resolve_secret_key

    settings = Settings(home=tmp_path)
    password, path, created = resolve_password(settings)
    assert created and path == tmp_path / "ui_password" and len(password) >= 16
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert resolve_password(settings) == (password, path, False)
    assert resolve_secret_key(settings) == resolve_secret_key(settings)
    from_setting = Settings(home=tmp_path, ui_password="given")
    assert resolve_password(from_setting) == ("given", None, False)


def test_pages_send_a_content_security_policy(signed_in):
    policy = signed_in.get("/").headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-eval" not in policy
