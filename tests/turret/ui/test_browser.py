"""The dashboard in a real browser: Debian's chromium driven by Selenium through chromedriver (both installed
by `make system-deps`; browser builds cannot be downloaded here), against `turret ui` started as a user would.

It signs in, visits every page, checks what a person sees (labels, numbers, Sankey nodes, a filter changing a
count), that the browser console logged no error, and that each page's screenshot is not blank. Screenshots go
to ``$TURRET_UI_SCREENSHOTS`` (default: a temporary folder, printed)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.turret.ui.conftest import PASSWORD

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT_S = 60

# (path, what to wait for, texts a person must see)
PAGES = [
    ("/", "#activity-chart[data-rendered='true']", ["Overview", "Password reset", "New this week"]),
    ("/topics", "table.topics",
     ["Password reset", "Pricing plans", "Billing questions", "Last 14 days", "Conversions", "Revenue"]),
    ("/topics/0", "#trend-chart[data-rendered='true']",
     ["Password reset", "How do I reset my password?", "and go to next", "latency_ms",
      "median time to convert"]),
    ("/journeys", "#sankey-chart[data-rendered='true']",
     ["Journeys", "Top paths", "Entry, exit and drop-off"]),
    ("/journeys?scope=user", "#paths", ["across a user's sessions"]),
    ("/map", "#map-chart[data-rendered='true']", ["Topic map", "Billing questions"]),
    ("/settings/metadata", "#fields", ["Settings → Metadata", "latency_ms", "tier"]),
    ("/projects/", "#projects", ["Projects & keys", "acme", "Create a project"]),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(ui_settings, tmp_path_factory):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TURRET_")}
    env.update(TURRET_HOME=str(ui_settings.home), TURRET_UI_PASSWORD=PASSWORD)
    log = tmp_path_factory.mktemp("ui-log") / "turret-ui.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "turret"), "ui", "--port", str(port)],
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"turret ui did not answer: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    folder = Path(os.environ.get("TURRET_UI_SCREENSHOTS") or tmp_path_factory.mktemp("ui-screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {folder}")
    return folder


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("Debian's chromium and chromium-driver are not installed (make system-deps does it)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                "--disable-gpu", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT_S)
    yield driver
    driver.quit()


def wait_for(driver, selector: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S).until(ec.visibility_of_element_located((By.CSS_SELECTOR, selector)))


def console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def assert_not_blank(path: Path) -> None:
    from PIL import Image, ImageStat

    with Image.open(path) as image:
        grey = image.convert("L")
        colours = len(image.convert("RGB").getcolors(maxcolors=1_000_000) or [])
        spread = ImageStat.Stat(grey).stddev[0]
    assert colours > 50 and spread > 5, f"{path.name} looks blank ({colours} colours, stddev {spread:.1f})"


@pytest.fixture(scope="module")
def signed_in(browser, server):
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    wait_for(browser, "#login")
    assert "/login" in browser.current_url
    browser.find_element(By.NAME, "password").send_keys("wrong")
    browser.find_element(By.CSS_SELECTOR, "#login button").click()
    assert "Wrong password" in wait_for(browser, ".flash.error").text
    console_errors(browser)  # the 401 of a wrong password is logged by the browser: expected, drop it
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "#login button").click()
    assert wait_for(browser, "#kpi-events").text == "15"
    return browser


@pytest.mark.parametrize(("path", "ready", "texts"), PAGES, ids=[p for p, _, _ in PAGES])
def test_every_page_renders_without_console_errors(signed_in, server, screenshots, path, ready, texts):
    signed_in.get(server + path)
    wait_for(signed_in, ready)
    body = signed_in.find_element("tag name", "body").text
    for expected in texts:
        assert expected in body, f"{path}: {expected!r} not on the page"
    name = path.strip("/").replace("/", "_").replace("?", "_").replace("=", "-") or "overview"
    shot = screenshots / f"{name}.png"
    signed_in.save_screenshot(str(shot))
    assert_not_blank(shot)
    assert console_errors(signed_in) == [], path


def test_sankey_shows_topic_nodes(signed_in, server):
    from selenium.webdriver.common.by import By

    signed_in.get(server + "/journeys")
    wait_for(signed_in, "#sankey-chart[data-rendered='true']")
    nodes = {n.text for n in signed_in.find_elements(By.CSS_SELECTOR, "#sankey-chart .sankey .node-label")}
    assert {"Password reset", "Pricing plans", "→ Pricing plans", "→ Billing questions"} <= nodes


def test_a_filter_changes_the_counts(signed_in, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    signed_in.get(server + "/")
    assert wait_for(signed_in, "#kpi-events").text == "15"
    Select(signed_in.find_element(By.NAME, "enum.tier")).select_by_visible_text("paid")
    signed_in.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    wait_for(signed_in, "#activity-chart[data-rendered='true']")
    assert "enum.tier=paid" in signed_in.current_url
    assert signed_in.find_element(By.ID, "kpi-events").text == "8"
    assert signed_in.find_element(By.ID, "kpi-users").text == "3"
    assert console_errors(signed_in) == []


def test_topic_conversions_panel_is_visible(signed_in, server):
    """Password reset: 2 conversions, 49.00 revenue (tests/fixtures/warehouse.py, ACME_OUTCOMES)."""
    from selenium.webdriver.common.by import By

    signed_in.get(server + "/topics/0")
    wait_for(signed_in, "#conversions-chart[data-rendered='true']")
    panel = wait_for(signed_in, "#conversions")
    assert panel.text.startswith("Conversions")
    assert signed_in.find_element(By.ID, "conv-conversions").text == "2"
    assert signed_in.find_element(By.ID, "conv-revenue").text == "49.00"
    assert console_errors(signed_in) == []


def test_topic_map_hover_shows_label_and_examples(signed_in, server):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    signed_in.get(server + "/map")
    wait_for(signed_in, "#map-chart[data-rendered='true']")
    points = signed_in.find_elements(By.CSS_SELECTOR, "#map-chart .scatterlayer .point")
    assert len(points) == 3
    ActionChains(signed_in).move_to_element(points[0]).perform()
    hover = wait_for(signed_in, "#map-chart .hoverlayer .hovertext")
    assert "events" in hover.text
