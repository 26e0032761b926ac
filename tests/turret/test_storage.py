"""turret.storage: sealed segments and Parquet marts behind fsspec (a second local folder and memory://).

tests/integration/test_s3.py runs the same paths against an S3-compatible server on 127.0.0.1."""

from __future__ import annotations

import secrets
from pathlib import Path

import duckdb
import pytest
from turret import loader, storage
from turret.publish import publish
from turret.settings import Settings, SettingsError
from turret.warehouse import ensure_schema

from tests.fixtures import landing as fx_landing
from tests.fixtures import warehouse as fx
from tests.fixtures.landing import write_segment


def record(n: int) -> dict:
    return fx_landing.record(f"evt_{n:032x}", prompt=f"How do I reset my password? ({n})")


def landed(root: Path) -> list[Path]:
    """Two sealed segments (one with a malformed line), and one open segment that must never travel."""
    return [
        write_segment(root, "h-1-20250615T120000000000Z-aa", [record(1), record(2), "not json"]),
        write_segment(root, "h-2-20250615T130000000000Z-bb", [record(3), record(1)], hour="hour=13"),
        write_segment(root, "h-3-20250615T130500000000Z-cc", [record(4)], hour="hour=13", sealed=False),
    ]


@pytest.fixture
def con(tmp_path):
    c = duckdb.connect(str(tmp_path / "wh.duckdb"))
    ensure_schema(c)
    yield c
    c.close()


def memory_url() -> str:
    return f"memory://turret-test-{secrets.token_hex(6)}/landing"


def test_ship_copies_sealed_segments_only_once_and_never_partials(tmp_path):
    local = tmp_path / "landing"
    landed(local)
    shared = tmp_path / "shared"
    url = shared.as_uri()  # file://..., a second local filesystem

    first = storage.ship_sealed(local, url)
    assert (first.shipped, first.skipped) == (2, 0)
    assert storage.list_sealed(url) == [
        "date=2025-06-15/hour=12/h-1-20250615T120000000000Z-aa.jsonl",
        "date=2025-06-15/hour=13/h-2-20250615T130000000000Z-bb.jsonl",
    ]
    assert not [p for p in shared.rglob("*") if p.name.startswith(".") or p.name.endswith(".open")]
    again = storage.ship_sealed(local, url)
    assert (again.shipped, again.skipped, again.bytes) == (0, 2, 0)

    # A segment sealed later is shipped by the next call.
    write_segment(local, "h-4-20250615T140000000000Z-dd", [record(5)], hour="hour=14")
    assert storage.ship_sealed(local, url).shipped == 1


def test_ship_refuses_a_different_file_under_a_segment_name(tmp_path):
    local = tmp_path / "landing"
    landed(local)
    url = str(tmp_path / "shared")
    storage.ship_sealed(local, url)
    target = tmp_path / "shared" / "date=2025-06-15" / "hour=12" / "h-1-20250615T120000000000Z-aa.jsonl"
    target.write_text("something else\n")
    with pytest.raises(storage.StorageError, match="never change"):
        storage.ship_sealed(local, url)


def test_ship_to_the_landing_store_itself_does_nothing(tmp_path):
    local = tmp_path / "landing"
    landed(local)
    assert storage.ship_sealed(local, str(local)) == storage.ShipStats()
    assert storage.ship_landing(Settings(home=tmp_path)) == storage.ShipStats()  # no TURRET_LANDING_URL


def test_list_sealed_ignores_open_hidden_and_partial_names():
    url = memory_url()
    fs, root = storage.resolve(url)
    for name in ("a.jsonl", "b.jsonl.open", ".a.jsonl.1234.partial", ".c.jsonl"):
        fs.pipe(f"{root}/date=2025-06-15/hour=12/{name}", b"{}\n")
    fs.pipe(f"{root}/stray.jsonl", b"{}\n")
    assert storage.list_sealed(url) == ["date=2025-06-15/hour=12/a.jsonl"]
    assert storage.list_sealed(memory_url()) == []


def test_loader_reads_a_url_exactly_like_the_local_store(tmp_path, con):
    local = tmp_path / "landing"
    landed(local)
    url = memory_url()
    storage.ship_sealed(local, url)

    remote = loader.load_landing(con, url)
    assert (remote.segments, remote.rows_loaded) == (2, 3)
    assert (remote.rows_duplicate, remote.rows_quarantined) == (1, 1)
    assert loader.load_landing(con, url) == loader.LoadStats()

    other = duckdb.connect(str(tmp_path / "other.duckdb"))
    ensure_schema(other)
    try:
        assert loader.load_landing(other, local) == remote
        dump = "select segment, event_id, line_no from raw.events order by all"
        assert other.execute(dump).fetchall() == con.execute(dump).fetchall()
        q = "select segment, line_no, reason from raw.quarantine order by all"
        assert other.execute(q).fetchall() == con.execute(q).fetchall()
    finally:
        other.close()
    # Same segment keys whichever way they were read: moving to the URL loads nothing twice.
    assert loader.load_landing(con, local) == loader.LoadStats()
    assert loader.load_landing(con, local.as_uri()) == loader.LoadStats()


def test_loader_on_a_missing_url_loads_nothing(con):
    assert loader.load_landing(con, memory_url()) == loader.LoadStats()


def test_storage_options_from_settings(tmp_path):
    s = Settings(home=tmp_path, storage_options='{"anon": false}', s3_endpoint_url="http://127.0.0.1:9000")
    expected = {"anon": False, "endpoint_url": "http://127.0.0.1:9000"}
    assert storage.storage_options(s, "s3://b/landing") == expected
    assert storage.storage_options(s, "gcs://b/landing") == {"anon": False}
    assert storage.storage_options(s, str(tmp_path)) == {}
    with pytest.raises(SettingsError, match="TURRET_STORAGE_OPTIONS"):
        storage.storage_options(Settings(home=tmp_path, storage_options="{nope"), "s3://b")
    with pytest.raises(SettingsError, match="JSON object"):
        storage.storage_options(Settings(home=tmp_path, storage_options="[1]"), "s3://b")


def test_locations_default_to_the_local_stores(tmp_path):
    s = Settings(home=tmp_path)
    assert storage.landing_url(s) == str(tmp_path / "landing")
    assert storage.publish_url(s) == str(tmp_path / "published" / "parquet")
    assert storage.is_local(storage.landing_url(s)) and storage.is_local((tmp_path / "x").as_uri())
    assert not storage.is_local("s3://bucket/landing")
    env = Settings.from_env({"TURRET_LANDING_URL": "s3://b/l", "TURRET_PUBLISH_URL": "s3://b/m",
                             "TURRET_S3_ENDPOINT_URL": "http://127.0.0.1:9000"}, home=tmp_path)
    assert (env.landing_url, env.publish_url, env.s3_endpoint_url) == ("s3://b/l", "s3://b/m",
                                                                      "http://127.0.0.1:9000")


@pytest.fixture
def warehouse_settings(tmp_path):
    s = Settings(home=tmp_path / "home", publish_url=str(tmp_path / "bucket" / "marts"))
    fx.built_warehouse(s.warehouse)
    return s


def test_publish_to_a_url_writes_snapshot_then_pointer_and_prunes(warehouse_settings, tmp_path):
    s = warehouse_settings
    con = duckdb.connect(str(s.warehouse))
    try:
        for _ in range(3):
            publish(s, con, keep=2)
        marts = {t for (t,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts'").fetchall()}
    finally:
        con.close()
    url = s.publish_url
    pointer = storage.read_pointer(url)
    assert set(pointer["tables"]) == marts
    assert pointer["tables"]["fct_events"]["rows"] == 17
    remote = Path(url)
    assert sorted(p.name for p in remote.iterdir() if p.is_dir())[-1] == pointer["stamp"]
    assert len([p for p in remote.iterdir() if p.is_dir()]) == 2
    assert not [p for p in remote.rglob(".*")]
    assert len(storage.read_mart(url, "dim_topics")) == 6
    assert storage.mart_path(url, "fct_events") == f"{url}/{pointer['stamp']}/fct_events.parquet"
    with pytest.raises(storage.StorageError, match="no mart"):
        storage.read_mart(url, "nope")

    # The local copy is still there, with the same pointer as a file next to the symlink.
    local = storage.read_pointer(storage.publish_url(Settings(home=s.home)))
    assert local["stamp"] == pointer["stamp"]
    assert (Path(s.published) / "turret.duckdb").exists()
    assert len(storage.read_mart(str(Path(s.published) / "parquet"), "fct_events")) == 17


def test_read_pointer_says_when_nothing_was_published(tmp_path):
    with pytest.raises(storage.StorageError, match="nothing published"):
        storage.read_pointer(str(tmp_path / "nothing"))
