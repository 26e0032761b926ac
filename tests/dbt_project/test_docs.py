"""dbt_project documentation stays complete: every column of every mart (and of the journey tables that
turret.journeys writes, declared as the dbt source `journeys`) has a description. YAML only: no dbt run.

tests/dbt_project/test_marts.py::test_every_built_column_is_documented checks the same against the columns
dbt actually built (catalog.json), for staging and intermediate too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from turret import dbt, journeys

MODELS = dbt.project_dir() / "models"


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _models(folder: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for path in sorted((MODELS / folder).glob("*.yml")):
        for model in _yaml(path).get("models") or []:
            out[model["name"]] = model
    return out


def _undocumented(columns: list[dict]) -> list[str]:
    return [c["name"] for c in columns if not str(c.get("description") or "").strip()]


def test_every_mart_sql_has_a_yaml_entry_with_columns():
    marts = _models("marts")
    sql = {p.stem for p in (MODELS / "marts").glob("*.sql")}
    assert sql == set(marts)
    for name, model in marts.items():
        assert str(model.get("description") or "").strip(), name
        assert model.get("columns"), f"{name} lists no columns"


@pytest.mark.parametrize("name", sorted(p.stem for p in (MODELS / "marts").glob("*.sql")))
def test_every_mart_column_has_a_description(name):
    model = _models("marts")[name]
    assert _undocumented(model["columns"]) == [], f"{name}: columns without a description"


@pytest.mark.parametrize("folder", ["staging", "intermediate"])
def test_staging_and_intermediate_models_and_columns_are_described(folder):
    models = _models(folder)
    assert {p.stem for p in (MODELS / folder).glob("*.sql")} == set(models)
    for name, model in models.items():
        assert str(model.get("description") or "").strip(), name
        assert model.get("columns") and _undocumented(model["columns"]) == [], name


def _ddl_columns(ddl: str) -> list[str]:
    body = ddl[ddl.index("(") + 1 : ddl.rindex(")")]
    return [m.group(1) for m in re.finditer(r"^\s*(\w+)\s+\w", body, re.MULTILINE)]


def test_journey_tables_are_a_documented_source_matching_their_ddl():
    sources = _yaml(MODELS / "marts" / "_journeys_sources.yml")["sources"]
    (source,) = [s for s in sources if s["name"] == "journeys"]
    assert source["schema"] == "marts"
    tables = {t["name"]: t for t in source["tables"]}
    for table, ddl in (("journey_paths", journeys.PATHS_DDL), ("journey_topic_stats", journeys.STATS_DDL)):
        assert f"marts.{table}" in ddl
        documented = tables[table]["columns"]
        assert [c["name"] for c in documented] == _ddl_columns(ddl), table
        assert _undocumented(documented) == [], table
        assert str(tables[table].get("description") or "").strip()
        # Built after dbt: a dbt test would error on the first build (checked by the GX marts suite instead).
        assert not tables[table].get("data_tests") and not any(c.get("data_tests") for c in documented)
