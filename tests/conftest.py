"""Fixtures shared by every test folder: an isolated TURRET_HOME per test and offline model loading."""

from __future__ import annotations

import os

import pytest
from turret.telemetry import switch_off

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# No tool a test runs in this process (dbt, cosmos, great-expectations) reports usage.
switch_off()


@pytest.fixture
def turret_home(tmp_path, monkeypatch):
    """A fresh TURRET_HOME for one test; every TURRET_* variable from the caller's shell is cleared."""
    for name in list(os.environ):
        if name.startswith("TURRET_") or name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "turret-home"
    home.mkdir()
    monkeypatch.setenv("TURRET_HOME", str(home))
    return home


@pytest.fixture
def settings(turret_home):
    from turret.settings import Settings

    return Settings.from_env()
