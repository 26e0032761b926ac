"""Usage reporting is off in every environment Turret starts a tool in, whatever the caller inherited."""

from __future__ import annotations

from turret import airflow_env, dbt, services
from turret.settings import Settings
from turret.telemetry import TELEMETRY_OFF, switch_off


def test_switch_off_overrides_an_inherited_opt_in():
    env = switch_off({"DO_NOT_TRACK": "0", "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "True", "KEEP": "me"})
    assert env["DO_NOT_TRACK"] == "1" and env["AIRFLOW__COSMOS__ENABLE_TELEMETRY"] == "False"
    assert env["KEEP"] == "me"


def test_airflow_and_dbt_environments_carry_every_switch(tmp_path):
    settings = Settings(home=tmp_path)
    inherited = {"PATH": "/usr/bin", "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "True"}
    env = airflow_env.airflow_environment(settings, environ=inherited)
    assert {k: env[k] for k in TELEMETRY_OFF} == TELEMETRY_OFF
    assert {k: v for k, v in dbt.dbt_env(settings).items() if k in TELEMETRY_OFF} == TELEMETRY_OFF
    up = services.service_environment(settings, airflow_port=8080, host="127.0.0.1")
    assert {k: up[k] for k in TELEMETRY_OFF} == TELEMETRY_OFF


def test_cosmos_reads_the_switches_as_off(monkeypatch):
    """cosmos decides at import time from DO_NOT_TRACK and Airflow's [cosmos] enable_telemetry."""
    import importlib

    for key, value in TELEMETRY_OFF.items():
        monkeypatch.setenv(key, value)
    from airflow.configuration import conf

    assert conf.getboolean("cosmos", "enable_telemetry", fallback=True) is False
    import cosmos.settings
    import cosmos.telemetry

    importlib.reload(cosmos.settings)
    assert cosmos.telemetry.should_emit() is False


def test_the_scheduler_health_server_is_off_by_default(tmp_path):
    """docs/operations.md: the scheduler's health server (0.0.0.0:8974) is off; /api/v2/monitor/health
    reports the scheduler instead."""
    settings = Settings(home=tmp_path)
    env = airflow_env.airflow_environment(settings, environ={"PATH": "/usr/bin"})
    assert env["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "False"
    up = services.service_environment(settings, airflow_port=8080, host="127.0.0.1")
    assert up["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "False"
