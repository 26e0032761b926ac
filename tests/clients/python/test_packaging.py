"""turret-sdk is its own small distribution: it installs into a bare virtualenv with nothing else."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

SDK = Path(__file__).parents[3] / "clients" / "python"


def run(*args: str | Path) -> str:
    out = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_installs_into_a_bare_venv_without_dependencies(tmp_path):
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    before = set(run(python, "-m", "pip", "list", "--format=freeze").split())
    # The wheel as it would be published (built offline with this environment's setuptools) ...
    source = shutil.copytree(SDK, tmp_path / "src", ignore=shutil.ignore_patterns("build", "*.egg-info"))
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist",
        source)
    wheels = list((tmp_path / "dist").glob("turret_sdk-0.1.0-py3-none-any.whl"))
    assert len(wheels) == 1, list((tmp_path / "dist").iterdir())
    # ... installs with no index at all: nothing else is needed.
    started = time.monotonic()
    run(python, "-m", "pip", "install", "--no-index", wheels[0])
    seconds = time.monotonic() - started
    added = set(run(python, "-m", "pip", "list", "--format=freeze").split()) - before
    assert [a.split("==")[0] for a in added] == ["turret-sdk"], added
    probe = (
        "import sys, turret_sdk; from importlib import resources; "
        "assert resources.files(turret_sdk).joinpath('py.typed').is_file(); "
        "heavy = {'flask', 'torch', 'airflow', 'requests', 'urllib3'} & set(sys.modules); "
        "assert not heavy, heavy; print(turret_sdk.__version__)"
    )
    assert run(python, "-c", probe).strip() == "0.1.0"
    print(f"turret-sdk installed in {seconds:.1f} s")
