"""Landing segments and published marts on an S3-compatible bucket: moto's S3 server on 127.0.0.1.

The whole path the settings switch on: sealed segments written by a real LandingWriter are shipped to
s3://, loaded from there into a fresh warehouse through the loader, the marts are published to s3:// and read
back. The server listens on the loopback address only, with fake credentials; nothing else is contacted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

import duckdb
import pytest

from tests.fixtures import warehouse as fx

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

from turret import landing, loader, storage  # noqa: E402
from turret.publish import publish  # noqa: E402
from turret.settings import Settings  # noqa: E402
from turret.warehouse import ensure_schema  # noqa: E402

BUCKET = "turret-it"
PROJECT = "11111111-1111-4111-8111-111111111111"


@pytest.fixture(scope="module")
def endpoint():
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        assert host == "127.0.0.1"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def settings(endpoint, tmp_path, monkeypatch):
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                 "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask an instance-metadata address
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    prefix = tmp_path.name  # one prefix per test in the shared bucket
    s = Settings.from_env(
        {
            "TURRET_LANDING_URL": f"s3://{BUCKET}/{prefix}/landing",
            "TURRET_PUBLISH_URL": f"s3://{BUCKET}/{prefix}/marts",
            "TURRET_S3_ENDPOINT_URL": endpoint,
        },
        home=tmp_path / "home",
    )
    assert urlsplit(s.s3_endpoint_url).hostname == "127.0.0.1"
    fs, _ = storage.resolve(s.landing_url, storage.storage_options(s, s.landing_url))
    if not fs.exists(BUCKET):
        fs.mkdir(BUCKET)
    return s


def land(settings: Settings, n: int) -> list[str]:
    """``n`` events through a real LandingWriter, sealed on close; returns their event ids."""
    writer = landing.LandingWriter(settings.landing_root, group_commit_ms=0)
    ids = []
    try:
        for i in range(n):
            now = datetime.now(UTC)
            rec = landing.make_record(
                project_id=PROJECT,
                contract="turret",
                name="user_prompt",
                metadata={"prompt": f"How do I reset my password? ({i})"},
                session_id=f"s{i % 3}",
                user_id="u1",
                session_id_generated=False,
                user_id_generated=False,
                timestamp=now,
                received_at=now,
                event_id=landing.new_event_id(),
            )
            writer.append([rec])
            ids.append(rec["event_id"])
    finally:
        writer.close()
    return ids


def test_segments_shipped_to_s3_load_once_through_the_loader(settings, tmp_path):
    ids = land(settings, 5)
    url, options = storage.landing_url(settings), storage.storage_options(settings, settings.landing_url)
    assert url.startswith("s3://")

    def local_keys() -> list[str]:
        return [p.relative_to(settings.landing_root).as_posix()
                for p in landing.iter_sealed_segments(settings.landing_root)]

    # One segment, or two if the hour rolled over while writing.
    shipped = storage.ship_landing(settings)
    assert shipped.shipped == len(local_keys()) >= 1 and shipped.bytes > 0
    assert storage.ship_landing(settings).skipped == shipped.shipped  # idempotent
    keys = storage.list_sealed(url, options)
    assert keys == local_keys()

    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    try:
        ensure_schema(con)
        stats = loader.load_landing(con, url, storage_options=options)
        assert (stats.segments, stats.rows_loaded, stats.rows_quarantined) == (len(keys), 5, 0)
        assert sorted(r[0] for r in con.execute("select event_id from raw.events").fetchall()) == sorted(ids)
        assert sorted(r[0] for r in con.execute("select distinct segment from raw.events").fetchall()) == keys

        # More events land; only the new segment(s) are shipped and loaded.
        land(settings, 2)
        new = len(local_keys()) - len(keys)
        assert new >= 1 and storage.ship_landing(settings).shipped == new
        again = loader.load_landing(con, url, storage_options=options)
        assert (again.segments, again.rows_loaded) == (new, 2)
        assert loader.load_landing(con, url, storage_options=options) == loader.LoadStats()
        # The local store holds the same segments under the same keys: nothing is loaded twice.
        assert loader.load_landing(con, settings.landing_root) == loader.LoadStats()
    finally:
        con.close()


def test_marts_published_to_s3_are_read_back_through_the_pointer(settings):
    url, options = settings.publish_url, storage.storage_options(settings, settings.publish_url)
    fx.built_warehouse(settings.warehouse)
    con = duckdb.connect(str(settings.warehouse))
    try:
        stamps = []
        for _ in range(4):
            publish(settings, con, keep=2)
            stamps.append(storage.read_pointer(url, options)["stamp"])
        expected = con.execute("select count(*) from marts.fct_events").fetchone()[0]
    finally:
        con.close()
    pointer = storage.read_pointer(url, options)
    assert pointer["stamp"] == stamps[-1] and pointer["tables"]["fct_events"]["rows"] == expected == 17

    frame = storage.read_mart(url, "fct_events", options)
    assert len(frame) == 17 and "event_id" in frame.columns
    assert len(storage.read_mart(url, "dim_topics", options)) == 6

    fs, root = storage.resolve(url, options)
    fs.invalidate_cache()
    entries = fs.ls(root, detail=True)
    folders = sorted(e["name"].rsplit("/", 1)[-1] for e in entries if e["type"] == "directory")
    assert folders == sorted(stamps[-2:])
    assert storage.mart_path(url, "fct_events", options) == f"{url}/{stamps[-1]}/fct_events.parquet"
    # The local DuckDB copy for BI tools is still published next to it.
    assert (settings.published / "turret.duckdb").exists()


def test_the_load_task_reads_sealed_segments_from_the_bucket(settings):
    """`load_landed` (the DAG's first task) with TURRET_LANDING_URL: the rows come from the bucket. The
    local copies are removed after shipping, so nothing else could have provided them."""
    from turret import tasks

    ids = land(settings, 4)
    shipped = storage.ship_landing(settings)
    assert shipped.shipped >= 1
    for path in landing.iter_sealed_segments(settings.landing_root):
        path.unlink()
    first = tasks.load_landed(settings)
    assert (first["segments"], first["rows_loaded"], first["segments_shipped"]) == (shipped.shipped, 4, 0)
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        assert sorted(r[0] for r in con.execute("select event_id from raw.events").fetchall()) == sorted(ids)
    finally:
        con.close()
    # Idempotent: the same segments are never loaded twice; new ones are shipped by the task itself.
    assert tasks.load_landed(settings)["rows_loaded"] == 0
    land(settings, 2)
    again = tasks.load_landed(settings)
    assert again["segments_shipped"] >= 1 and again["rows_loaded"] == 2


def test_embedding_partitions_travel_through_the_bucket(settings, tmp_path):
    """The mapped embedding with TURRET_PIPELINE_URL on s3://: partitions written, embedded and merged
    through the bucket, then removed from it."""
    import dataclasses

    import numpy as np
    from turret import embed_partitions
    from turret.embed import SentenceTransformerEmbedder

    s = dataclasses.replace(settings, pipeline_url=settings.landing_url.rsplit("/", 1)[0] + "/pipeline",
                            embed_partition_texts=2)
    con = duckdb.connect(str(tmp_path / "emb.duckdb"))
    try:
        ensure_schema(con)
        texts = ["reset my password", "refund my order", "cancel the plan", "ok thanks", "where is my parcel"]
        con.executemany("insert into pipeline.event_texts values ('p1', ?, 'prompt', ?, ?)",
                        [(f"e{i}", f"h{i}", t) for i, t in enumerate(texts)])
        partitions = embed_partitions.plan(con, s, run_id="turret_hourly/2026-01-01T10:00:00Z")
        assert [p["texts"] for p in partitions] == [2, 1, 2]  # 5 texts, at most 2 each: 3 equal ranges
        fs, root = storage.resolve(s.pipeline_url, storage.storage_options(s, s.pipeline_url))
        fs.invalidate_cache()
        assert len(fs.glob(f"{root}/embed/*/pending/*.parquet")) == len(partitions)
        embedder = SentenceTransformerEmbedder(num_threads=1)
        for p in partitions:
            embed_partitions.embed_partition(s, p, embedder)
        assert embed_partitions.merge(con, s, partitions) == 5
        got = dict(con.execute("select text_hash, vector from pipeline.embeddings").fetchall())
        assert sorted(got) == [f"h{i}" for i in range(5)]
        assert np.allclose(np.asarray(got["h0"]), embedder.encode([texts[0]])[0], atol=1e-5)
        fs.invalidate_cache()
        assert fs.glob(f"{root}/embed/*/*/*.parquet") == []
    finally:
        con.close()
