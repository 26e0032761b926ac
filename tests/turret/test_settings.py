"""Where the state lives when TURRET_HOME is not set: ./.turret beside the command, else ~/.turret."""

from __future__ import annotations

from pathlib import Path

from turret.settings import Settings, default_home


def test_a_turret_folder_in_the_current_directory_is_the_home(tmp_path, monkeypatch):
    monkeypatch.delenv("TURRET_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".turret").mkdir()
    assert default_home() == (tmp_path / ".turret").resolve()
    assert Settings.from_env().warehouse == (tmp_path / ".turret" / "warehouse.duckdb").resolve()


def test_without_one_the_home_is_in_the_users_home(tmp_path, monkeypatch):
    monkeypatch.delenv("TURRET_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    monkeypatch.chdir(tmp_path)
    assert default_home() == tmp_path / "me" / ".turret"
    # A file named .turret is not a state folder.
    (tmp_path / ".turret").write_text("")
    assert default_home() == tmp_path / "me" / ".turret"


def test_turret_home_wins_over_the_local_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".turret").mkdir()
    monkeypatch.setenv("TURRET_HOME", str(tmp_path / "elsewhere"))
    assert Path(Settings.from_env().home) == tmp_path / "elsewhere"
