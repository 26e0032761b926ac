"""dbt_project documentation stays complete: every column of every mart has a description, and what dbt reads
is defined in turret.warehouse. YAML only: no dbt run.

tests/dbt_project/test_marts.py::test_every_built_column_is_documented checks the same against the columns
dbt actually built (catalog.json), for staging and intermediate too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from turret import dbt, warehouse

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


def _ddl_columns(table: str) -> list[str]:
    (ddl,) = [d for d in warehouse.SCHEMA_DDL if f"create table if not exists {table} (" in d]
    body = ddl[ddl.index("(") + 1 : ddl.rindex(")")]
    return [m.group(1) for m in re.finditer(r"^\s*(\w+)\s+\w", body, re.MULTILINE) if m.group(1) != "primary"]


def test_journey_marts_publish_the_pipeline_journey_tables():
    """turret.journeys writes pipeline.journey_* (defined in turret.warehouse); the journey marts carry the
    same columns, plus the path spelled in labels."""
    marts = _models("marts")
    assert [c["name"] for c in marts["journey_topic_stats"]["columns"]] == _ddl_columns(
        "pipeline.journey_topic_stats"
    )
    paths = [c["name"] for c in marts["journey_paths"]["columns"]]
    assert [c for c in paths if c != "path"] == _ddl_columns("pipeline.journey_paths")
    for name in ("journey_paths", "journey_topic_stats"):
        assert marts[name]["config"]["contract"] == {"enforced": True}


def test_every_pipeline_table_dbt_reads_is_defined_in_the_warehouse_module():
    sources = _yaml(MODELS / "staging" / "_sources.yml")["sources"]
    for source in sources:
        for table in source["tables"]:
            name = f"{source['schema']}.{table['name']}"
            assert any(f"create table if not exists {name} (" in d for d in warehouse.SCHEMA_DDL), name
