"""The README's commands, verbatim, in the folder `make demo` ran in: the `turret` executable finds the
./.turret it wrote without TURRET_HOME being exported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.fixtures import warehouse as fx


def test_readme_topics_and_journeys_commands_find_the_demo_home(tmp_path):
    fx.built_warehouse(tmp_path / ".turret" / "warehouse.duckdb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TURRET_")}
    turret = str(Path(sys.executable).parent / "turret")
    for command in (["topics", "--project", "acme"], ["journeys", "--project", "acme"]):
        done = subprocess.run([turret, *command], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "acme" in done.stdout and "Password reset" in done.stdout
