"""turret.dbt: the paths and environment that cosmos and run_dbt hand to dbt (no dbt run here)."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from turret import dbt
from turret.settings import Settings


def test_profiles_read_the_warehouse_from_turret_warehouse():
    profile = yaml.safe_load(dbt.profiles_path().read_text())
    output = profile["turret"]["outputs"][profile["turret"]["target"]]
    assert output["type"] == "duckdb"
    assert "env_var('TURRET_WAREHOUSE')" in output["path"]
    project = yaml.safe_load((dbt.project_dir() / "dbt_project.yml").read_text())
    assert project["profile"] == "turret"
    assert project["models"]["turret"]["marts"]["+schema"] == "marts"


def test_dbt_env_gives_absolute_paths_under_home(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = dbt.dbt_env(Settings(home=Path("rel-home")))
    assert env["TURRET_WAREHOUSE"] == str(tmp_path / "rel-home" / "warehouse.duckdb")
    assert env["DBT_TARGET_PATH"] == str(tmp_path / "rel-home" / "dbt" / "target")
    explicit = dbt.dbt_env(Settings(home=tmp_path, warehouse_path=str(tmp_path / "w" / "x.duckdb")))
    assert explicit["TURRET_WAREHOUSE"] == str(tmp_path / "w" / "x.duckdb")


def test_patched_environ_restores_the_caller_environment(monkeypatch):
    monkeypatch.setenv("TURRET_WAREHOUSE", "/before")
    monkeypatch.delenv("DBT_LOG_PATH", raising=False)
    with dbt._patched_environ({"TURRET_WAREHOUSE": "/during", "DBT_LOG_PATH": "/logs"}):
        assert os.environ["TURRET_WAREHOUSE"] == "/during"
    assert os.environ["TURRET_WAREHOUSE"] == "/before"
    assert "DBT_LOG_PATH" not in os.environ


def test_project_dir_can_be_moved(monkeypatch, tmp_path):
    monkeypatch.setenv(dbt.PROJECT_DIR_ENV, str(tmp_path))
    assert dbt.profiles_path() == tmp_path / "profiles.yml"
