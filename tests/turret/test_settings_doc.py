"""docs/settings.md and turret.settings.Settings describe the same settings, in the same order."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from turret.settings import ENV_PREFIX, Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


def _rows() -> list[list[str]]:
    rows = []
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 5:
            rows.append(cells)
    return rows


def _code(cell: str) -> str | None:
    m = re.match(r"^`([^`]*)`", cell)
    return m.group(1) if m else None


def test_one_row_per_setting_in_order():
    assert [_code(r[0]) for r in _rows()] == [f.name for f in dataclasses.fields(Settings)]


def test_environment_variable_column():
    for row in _rows():
        assert _code(row[1]) == ENV_PREFIX + _code(row[0]).upper(), row[0]


def test_defaults_match_the_code():
    defaults = Settings(home=Path("~/.turret"))
    for row in _rows():
        name, documented = _code(row[0]), row[2]
        value = getattr(defaults, name)
        if value == "":
            assert documented == "*(empty)*", name
        elif isinstance(value, bool):
            assert _code(documented) == ("true" if value else "false"), name
        else:
            assert _code(documented) == str(value), name


def test_every_row_says_what_and_who():
    for row in _rows():
        assert len(row[3]) > 20, f"{row[0]}: say what the setting means"
        assert row[4], f"{row[0]}: say who reads it"


def test_secrets_are_marked():
    fields = dataclasses.fields(Settings)
    secrets = {f.name for f in fields if f.name.endswith(("api_key", "password", "secret"))}
    for row in _rows():
        if _code(row[0]) in secrets:
            assert row[3].startswith("Secret."), row[0]
