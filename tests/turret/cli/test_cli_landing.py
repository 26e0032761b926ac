"""`turret landing status|seal|check` against a real landing directory."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from turret import landing
from turret.cli import cli


@pytest.fixture
def run(turret_home):
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, list(args), catch_exceptions=False)


def rec():
    now = landing.utc_now()
    return landing.make_record(
        project_id="p1", contract="turret", name="n", metadata={}, session_id="s", user_id="u",
        session_id_generated=True, user_id_generated=True, timestamp=now, received_at=now,
        event_id=landing.new_event_id(),
    )


def orphan(root, content: bytes):
    """An open segment whose writer process is gone, as a crash leaves it."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    now = landing.utc_now()
    directory = landing.hour_dir(root, now)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (f"{landing.default_host()}-{proc.pid}-{now.strftime('%Y%m%dT%H%M%S%fZ')}"
                        "-0000.jsonl.open")
    path.write_bytes(content)
    return path


def test_empty_store(run, settings):
    assert "No segments yet." in run("landing", "status").output
    assert "nothing to seal" in run("landing", "seal").output
    result = run("landing", "check")
    assert result.exit_code == 0 and "Checked 0 segment(s)" in result.output


def test_status_seal_check(run, settings):
    root = settings.landing_root
    writer = landing.LandingWriter(root)
    writer.append([rec(), rec()])
    dead = orphan(root, json.dumps(rec()).encode() + b"\n" + b'{"v":1,"eve')

    status = run("landing", "status").output
    assert "0 sealed, 2 open, 4 lines" in status
    assert "writer alive" in status and "writer DEAD" in status

    sealed = run("landing", "seal")
    assert sealed.exit_code == 0, sealed.output
    assert "Sealed 2 segment(s)" in sealed.output
    assert writer.open_segments() == [] and not dead.exists()
    assert "2 sealed, 0 open" in run("landing", "status").output

    check = run("landing", "check")
    assert check.exit_code == 1
    assert "3 valid line(s), 1 bad" in check.output
    assert ":2: torn line: no trailing newline" in check.output
    report = json.loads(run("landing", "check", "--json").output)
    assert report["valid_lines"] == 3 and report["bad_lines"][0]["raw"] == '{"v":1,"eve'
    writer.close()


def test_status_json(run, settings):
    writer = landing.LandingWriter(settings.landing_root)
    writer.append([rec()])
    (info,) = json.loads(run("landing", "status", "--json").output)
    assert (info["sealed"], info["lines"], info["writer_alive"]) == (False, 1, True)
    writer.close()


def test_check_include_open_reads_open_segments(run, settings):
    orphan(settings.landing_root, b"garbage\n")
    assert run("landing", "check").exit_code == 0
    result = run("landing", "check", "--include-open")
    assert result.exit_code == 1 and "invalid JSON" in result.output
