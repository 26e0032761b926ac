"""turret.publish: snapshots of the marts that BI readers can hold open while a new one is published.

The reader runs in its own process, as a BI tool would (DuckDB caches open databases per process, so an
in-process reader would not show what another program sees)."""

from __future__ import annotations

import os
import subprocess
import sys

import duckdb
import pytest
from turret.publish import PublishError, open_marts, publish
from turret.settings import Settings

from tests.fixtures import warehouse as fx

READER = r"""
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
query = "select count(*) from marts.dim_topics"
print(con.execute(query).fetchone()[0], flush=True)
sys.stdin.readline()  # hold the copy open until the test has published again
print(con.execute(query).fetchone()[0], flush=True)
"""


@pytest.fixture
def settings(tmp_path):
    s = Settings(home=tmp_path / "home")
    fx.built_warehouse(s.warehouse)
    return s


@pytest.fixture
def con(settings):
    c = duckdb.connect(str(settings.warehouse))
    yield c
    c.close()


def count(path, sql="select count(*) from marts.dim_topics"):
    c = duckdb.connect(str(path), read_only=True)
    try:
        return c.execute(sql).fetchone()[0]
    finally:
        c.close()


def test_publish_writes_snapshot_parquet_and_switches_links(settings, con):
    snapshot = publish(settings, con)
    root = settings.published
    assert snapshot.parent == root and snapshot.name.startswith("turret-")
    assert (root / "turret.duckdb").is_symlink()
    assert (root / "turret.duckdb").resolve() == snapshot
    marts = {t for (t,) in con.execute(
        "select table_name from information_schema.tables where table_schema = 'marts'").fetchall()}
    copy = duckdb.connect(str(root / "turret.duckdb"), read_only=True)
    try:
        for table in marts:
            assert copy.execute(f"select count(*) from marts.{table}").fetchone() == \
                con.execute(f"select count(*) from marts.{table}").fetchone()
        # Views in main, and the publish log.
        assert copy.execute("select count(*) from dim_topics").fetchone() == (6,)
        logged = dict(copy.execute("select table_name, row_count from _turret_publish").fetchall())
        assert logged["fct_events"] == 17 and set(logged) == marts
    finally:
        copy.close()
    current = root / "parquet" / "current"
    assert current.is_symlink()
    assert {p.stem for p in current.iterdir()} == marts
    parquet = current / "fct_events.parquet"
    assert duckdb.connect().execute(f"select count(*) from '{parquet}'").fetchone() == (17,)
    assert not list(root.glob(".*partial"))


def test_reader_holding_old_copy_keeps_working_and_new_copy_has_new_rows(settings, con):
    publish(settings, con)
    link = settings.published / "turret.duckdb"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(link)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "6"
        con.execute("insert into marts.dim_topics select * replace (42 as topic_id, 'New topic' as label) "
                    "from marts.dim_topics where topic_id = 0 and field = 'prompt'")
        # keep=1 removes the reader's file from the folder: it must still read it through its open handle.
        publish(settings, con, keep=1)
        assert count(link) == 7
        out, err = reader.communicate("go\n", timeout=60)
    finally:
        if reader.poll() is None:
            reader.kill()
    assert reader.returncode == 0, err
    assert out.strip() == "6"
    assert len(list(settings.published.glob("turret-*.duckdb"))) == 1


def test_keeps_the_last_n_snapshots(settings, con):
    paths = [publish(settings, con, keep=2) for _ in range(4)]
    root = settings.published
    assert sorted(root.glob("turret-*.duckdb")) == sorted(paths[-2:])
    folders = sorted(p.name for p in (root / "parquet").iterdir() if not p.is_symlink())
    assert folders == sorted(p.name[len("turret-"):-len(".duckdb")] for p in paths[-2:])
    assert os.readlink(root / "parquet" / "current") == folders[-1]


def test_nothing_to_publish_on_a_warehouse_without_marts(tmp_path):
    s = Settings(home=tmp_path)
    c = duckdb.connect(str(fx.build_empty_file(s.warehouse)))
    try:
        with pytest.raises(PublishError, match="no marts yet"):
            publish(s, c)
        with pytest.raises(ValueError, match="keep"):
            publish(s, c, keep=0)
    finally:
        c.close()


def test_open_marts_prefers_published_copy_then_warehouse(tmp_path, settings, con):
    with pytest.raises(PublishError, match="run the pipeline first"):
        open_marts(Settings(home=tmp_path / "nothing"))
    empty = Settings(home=tmp_path / "empty")
    fx.build_empty_file(empty.warehouse)
    with pytest.raises(PublishError, match="no marts yet"):
        open_marts(empty)

    publish(settings, con)
    con.execute("delete from marts.dim_topics")
    reader, source = open_marts(settings)
    try:
        assert source.startswith("published copy")
        assert reader.execute("select count(*) from marts.dim_topics").fetchone() == (6,)
    finally:
        reader.close()


def test_snapshot_is_written_in_a_storage_format_duckdb_1x_reads(settings, con):
    from turret.publish import SNAPSHOT_STORAGE_VERSION

    snapshot = publish(settings, con)
    probe = duckdb.connect()
    try:
        probe.execute(f"attach '{snapshot}' as snap (read_only)")
        (tags,) = probe.execute("select tags from duckdb_databases() where database_name = 'snap'").fetchone()
    finally:
        probe.close()
    assert tags["storage_version"].startswith(SNAPSHOT_STORAGE_VERSION)
    assert SNAPSHOT_STORAGE_VERSION.startswith("v1.")


def test_duckdb_1x_cli_from_pypi_opens_the_stable_path(settings, con):
    """The newest duckdb-cli on PyPI (1.x) reads published/turret.duckdb: tables, views, the publish log."""
    from tests.fixtures.bi import duckdb_cli, run_cli

    cli = duckdb_cli()
    if cli is None:
        pytest.skip("the DuckDB CLI from PyPI is not installed in .venv/duckdb-cli (make test installs it)")
    version = subprocess.run([str(cli), "--version"], capture_output=True, text=True, timeout=60).stdout
    assert version.startswith("v1."), version
    publish(settings, con)
    publish(settings, con)  # the stable path follows the newest snapshot
    stable = settings.published / "turret.duckdb"
    done = run_cli(cli, stable, "select count(*) from marts.fct_events; select count(*) from dim_topics; "
                                "select sum(row_count) > 0 from _turret_publish;")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["17", "6", "true"]
