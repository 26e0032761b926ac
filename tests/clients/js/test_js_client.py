"""The Node.js client's own tests (clients/js, node's test runner) against a real ``turret serve``.

``npm ci`` installs the pinned build tools (typescript, @types/node: development dependencies only; the
client has no runtime dependencies), ``npm test`` compiles it and runs clients/js/test/, whose tests start
``turret serve`` from this environment and read the landing store back with its Python reader.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CLIENT = Path(__file__).parents[3] / "clients" / "js"


def npm(*args: str, env: dict[str, str], timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(["npm", *args], cwd=CLIENT, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def node_env():
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed: the JavaScript client cannot be built or tested")
    version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 20:
        pytest.skip(f"the client's tests need node 20 or later (its test runner options); this is {version}")
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("TURRET_")}
    env.update({"TURRET_BIN": str(bin_dir / "turret"), "TURRET_PYTHON": sys.executable})
    env.update({f"npm_config_{name}": "false" for name in ("fund", "audit", "update_notifier")})
    installed = npm("ci", env=env, timeout=600)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return env


def test_the_client_has_no_runtime_dependencies():
    package = json.loads((CLIENT / "package.json").read_text())
    assert "dependencies" not in package
    assert set(package["devDependencies"]) == {"typescript", "@types/node"}
    lock = json.loads((CLIENT / "package-lock.json").read_text())
    assert all(entry.get("dev") for name, entry in lock["packages"].items() if name), "a runtime dependency"


def test_npm_test_passes_against_a_real_server(node_env):
    result = npm("test", env=node_env, timeout=900)
    report = result.stdout + result.stderr
    print(report[-6000:])
    assert result.returncode == 0, report[-20000:]
    counts = {name: int(n) for name, n in re.findall(r"^# (tests|pass|fail) (\d+)$", report, re.MULTILINE)}
    assert counts["fail"] == 0 and counts["pass"] == counts["tests"] > 0, counts
