"""`turret projects ...` through click's runner, against a real SQLite control plane in a temporary home."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from turret.cli import cli
from turret.controlplane import ControlPlane


@pytest.fixture
def run(turret_home):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


def test_create_prints_a_summary_and_the_key_alone_on_the_last_line(run, settings):
    result = run("projects", "create", "Support bot", "--plan", "trial")
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert "Created project 'Support bot' on plan trial: 250,000 events in total within 14 days" in lines[0]
    key = lines[-1]
    assert re.fullmatch(r"trt_[0-9A-Za-z]{40}", key)
    assert ControlPlane.from_settings(settings).authenticate(key).name == "Support bot"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--plan", "gold"], "'gold' is not one of 'trial', 'pro', 'business', 'enterprise'"),
        (["--plan", "enterprise"], "plan 'enterprise' needs an explicit monthly limit (--monthly-limit N)"),
        (["--plan", "pro", "--monthly-limit", "0"],
         "--monthly-limit must be from 1 to 9,223,372,036,854,775,807"),
        (["--plan", "pro", "--monthly-limit", "-3"], "--monthly-limit must be from 1 to"),
        (["--plan", "pro", "--monthly-limit", "9223372036854775808"],
         "--monthly-limit must be from 1 to 9,223,372,036,854,775,807, got 9223372036854775808"),
        (["--plan", "pro", "--monthly-limit", "lots"],
         "--monthly-limit must be a whole number of events, got 'lots'"),
        ([], "Missing option '--plan'"),
    ],
)
def test_create_rejects_bad_input_with_exit_status_2(run, args, message):
    result = run("projects", "create", "demo", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["create", "set-plan"])
def test_a_limit_beyond_64_bits_is_one_line(run, command):
    run("projects", "create", "demo", "--plan", "pro")
    args = ["--plan", "enterprise"] if command == "create" else ["enterprise"]
    result = run("projects", command, "demo" if command == "set-plan" else "big", *args,
                 "--monthly-limit", "9223372036854775808")
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0, result.output
    assert result.output.startswith("Error: --monthly-limit must be from 1 to")
    # The largest 64-bit limit is accepted and stored exactly.
    ok = run("projects", command, "demo" if command == "set-plan" else "big", *args,
             "--monthly-limit", "9223372036854775807")
    assert ok.exit_code == 0, ok.output
    limits = {r["name"]: r["limit"] for r in json.loads(run("projects", "list", "--json").output)}
    assert limits["demo" if command == "set-plan" else "big"] == 2**63 - 1


def test_set_plan_changes_terms_and_starts_a_new_period(run, settings):
    run("projects", "create", "demo", "--plan", "trial")
    result = run("projects", "set-plan", "demo", "pro")
    assert result.exit_code == 0, result.output
    assert "Project 'demo' is on plan pro: 1,000,000 events per calendar month (UTC)" in result.output
    result = run("projects", "set-plan", "demo", "business", "--monthly-limit", "42")
    assert "42 events per calendar month (UTC)" in result.output
    plane = ControlPlane.from_settings(settings)
    project = plane.get_project("demo")
    assert (project.plan, project.monthly_limit) == ("business", 42)
    assert plane.period(project).start == project.plan_changed_at  # the month counts from the change
    [row] = json.loads(run("projects", "list", "--json").output)
    expected = ("business", 42, project.plan_changed_at.isoformat())
    assert (row["plan"], row["limit"], row["period_start"]) == expected


@pytest.mark.parametrize(
    "args, message",
    [
        (["demo", "gold"], "'gold' is not one of"),
        (["demo", "enterprise"], "plan 'enterprise' needs an explicit monthly limit"),
        (["demo", "trial"], "project 'demo' is on pro; a trial cannot be restarted"),
        (["nope", "pro"], "no project named 'nope'"),
    ],
)
def test_set_plan_refuses_clearly(run, args, message):
    run("projects", "create", "demo", "--plan", "pro")
    result = run("projects", "set-plan", *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output


def test_names_and_ids_cannot_be_confused(run):
    first = run("projects", "create", "first", "--plan", "pro").output
    first_id = re.search(r"project id: (\S+)", first)[1]
    # A name that is a project id (or any UUID) is refused, so rotate-key <uuid> can only mean that id.
    result = run("projects", "create", first_id, "--plan", "pro")
    assert result.exit_code == 2 and "looks like a project id" in result.output
    other = "00000000-0000-4000-8000-000000000000"
    assert "no project with id" in run("projects", "rotate-key", other).output
    rotated = run("projects", "rotate-key", first_id.upper())
    assert rotated.exit_code == 0 and "New key for 'first'" in rotated.output


def test_duplicate_name_is_exit_status_2(run):
    assert run("projects", "create", "demo", "--plan", "pro").exit_code == 0
    result = run("projects", "create", "demo", "--plan", "business")
    assert result.exit_code == 2
    assert "Error: a project named 'demo' already exists" in result.output


def test_list_table_and_json(run):
    assert "No projects yet" in run("projects", "list").output
    run("projects", "create", "alpha", "--plan", "pro")
    run("projects", "create", "beta", "--plan", "enterprise", "--monthly-limit", "2500000")
    table = run("projects", "list").output.splitlines()
    assert table[0].split() == ["NAME", "ID", "PLAN", "LIMIT", "USED", "USED%", "RESETS", "CREATED"]
    assert table[1].split()[:5] == ["alpha", table[1].split()[1], "pro", "1,000,000", "0"]
    assert table[2].split()[2:4] == ["enterprise", "2,500,000"]
    rows = json.loads(run("projects", "list", "--json").output)
    assert [(r["name"], r["plan"], r["limit"], r["usage"]) for r in rows] == [
        ("alpha", "pro", 1_000_000, 0), ("beta", "enterprise", 2_500_000, 0)
    ]
    assert set(rows[0]) >= {"project_id", "created_at", "period_start", "period_end"}


def test_rotate_keys_revoke(run, settings):
    first = run("projects", "create", "demo", "--plan", "pro").output.strip().splitlines()[-1]
    kept = run("projects", "rotate-key", "demo", "--keep-old")
    assert kept.exit_code == 0 and "old keys still work" in kept.output
    second = kept.output.strip().splitlines()[-1]
    rotated = run("projects", "rotate-key", "demo")
    third = rotated.output.strip().splitlines()[-1]
    assert "old keys are revoked" in rotated.output
    plane = ControlPlane.from_settings(settings)
    assert [plane.authenticate(k) is not None for k in (first, second, third)] == [False, False, True]

    listing = run("projects", "keys", "demo").output
    assert first[:12] in listing and third[:12] in listing
    assert first not in listing and third not in listing  # prefixes only
    assert listing.count("revoked") == 2 and listing.count("active") == 1

    revoked = run("projects", "revoke-key", third[:12])
    assert revoked.exit_code == 0 and f"Revoked key {third[:12]}" in revoked.output
    assert ControlPlane.from_settings(settings).authenticate(third) is None
    again = run("projects", "revoke-key", third[:12])
    assert again.exit_code == 2 and "already revoked" in again.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["keys", "nope"], "no project named 'nope'"),
        (["rotate-key", "nope"], "no project named 'nope'"),
        (["revoke-key", "trt_zzzzzzzz"], "no API key matches 'trt_zzzzzzzz'"),
        (["revoke-key", "hello"], "give a key prefix like"),
    ],
)
def test_unknown_things_are_clear_errors(run, args, message):
    result = run("projects", *args)
    assert result.exit_code == 2 and message in result.output


def test_bad_setting_is_a_clear_error(run, monkeypatch):
    monkeypatch.setenv("TURRET_KEY_CACHE_SECONDS", "soon")
    result = run("projects", "list")
    assert result.exit_code == 2
    assert "TURRET_KEY_CACHE_SECONDS='soon' is not a valid float" in result.output


def test_unreachable_database_is_a_clear_error(run, monkeypatch, tmp_path):
    # A SQLite file inside a path that is a file: the database cannot be opened.
    (tmp_path / "blocker").write_text("")
    monkeypatch.setenv("TURRET_DATABASE_URL", f"sqlite:///{tmp_path / 'blocker' / 'control.db'}")
    result = run("projects", "list")
    assert result.exit_code == 1
    assert "Error: cannot open the control plane" in result.output
    assert "Traceback" not in result.output
