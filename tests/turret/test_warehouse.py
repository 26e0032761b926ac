"""turret.warehouse holds the definitions of the tables Python writes (docs/adr/0009-one-rule-one-owner.md).
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
from turret import warehouse

PACKAGE = Path(warehouse.__file__).parent
# The topic engine still defines its own state tables (topic_centroids, topic_models, topic_label_cache) in
# turret.topics.store. The published copy (turret.publish) and the control plane (SQLAlchemy) are other
# databases.
NOT_YET_MOVED = {"topics/store.py"}
OTHER_DATABASES = {"publish.py", "controlplane.py"}


def test_no_other_module_defines_a_warehouse_table():
    definers = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if re.search(r"create (or replace )?table", path.read_text(encoding="utf-8"), re.IGNORECASE)
    }
    assert definers - NOT_YET_MOVED - OTHER_DATABASES == {"warehouse.py"}


def test_python_defines_only_raw_and_pipeline_tables():
    con = duckdb.connect()
    warehouse.ensure_schema(con)
    con.execute(warehouse.embeddings_ddl(4))
    schemas = {
        s for (s,) in con.execute("select distinct table_schema from information_schema.tables").fetchall()
    }
    assert schemas == {"raw", "pipeline"}
    tables = {t for (t,) in con.execute("select table_name from information_schema.tables").fetchall()}
    assert {"checked_events", "session_steps", "journey_paths", "journey_topic_stats", "embeddings"} <= tables
