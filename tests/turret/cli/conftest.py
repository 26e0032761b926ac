"""Make ``turret.cli`` the real package in this folder's tests.

tests/conftest.py puts ``tests/`` on ``sys.path`` (pytest's default rootdir imports), so ``tests/turret`` and
this folder, ``tests/turret/cli``, look like namespace packages ``turret`` and ``turret.cli`` that shadow
the installed ones (plain modules such as ``turret.landing`` still resolve, through the editable-install
finder). Load the real ``turret.cli`` explicitly until the suite runs with ``--import-mode=importlib``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import turret.settings

if getattr(sys.modules.get("turret.cli"), "__file__", None) is None:
    _cli_dir = Path(turret.settings.__file__).parent / "cli"
    _spec = importlib.util.spec_from_file_location(
        "turret.cli", _cli_dir / "__init__.py", submodule_search_locations=[str(_cli_dir)]
    )
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["turret.cli"] = _module
    _spec.loader.exec_module(_module)
