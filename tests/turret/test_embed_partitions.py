"""The mapped embedding (plan -> embed each partition -> merge) against the single-process embed step, with
the real model: the same vectors, topics that agree; partitions bounded, idempotent, complete or refused."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest
from turret import embed_partitions
from turret.embed import SentenceTransformerEmbedder, embed_pending, has_embeddings_table, load_embeddings
from turret.embed_partitions import PartitionError, merge, plan, split
from turret.settings import Settings
from turret.topics import update_topics
from turret.warehouse import ensure_schema

from tests.turret.topics.conftest import intent_texts

MODEL = "all-MiniLM-L6-v2"


def test_split_bounds_partitions_per_project():
    ranges = split([("a", 25), ("b", 3), ("c", 10)], 10)
    assert ranges == [("a", 0, 8), ("a", 8, 17), ("a", 17, 25), ("b", 25, 28), ("c", 28, 38)]
    assert all(hi - lo <= 10 for _, lo, hi in ranges)
    assert split([], 10) == [] and split([("a", 1)], 1) == [("a", 0, 1)]
    with pytest.raises(ValueError):
        split([("a", 1)], 0)


def test_run_key_is_a_folder_name():
    key = embed_partitions.run_key("turret_hourly/2026-01-01T10:00:00Z")
    assert key == "turret_hourly-2026-01-01T10-00-00Z"


@pytest.fixture(scope="module")
def embedder():
    # One thread: other test processes share the two cores (STACK.md).
    return SentenceTransformerEmbedder(MODEL, num_threads=1)


def _rows() -> list[tuple[str, str, str, str]]:
    """(project, event, hash, text): the 200 intent texts over two projects, ten texts in both, and
    repeats within a project (one text, several events)."""
    import hashlib

    texts, _ = intent_texts()
    rows = []
    for i, text in enumerate(texts):
        project = "p1" if i < 120 else "p2"
        h = hashlib.sha256(text.encode()).hexdigest()[:32]
        rows.append((project, f"e{i:03d}", h, text))
        if i % 12 == 0:
            rows.append(("p2" if project == "p1" else "p1", f"x{i:03d}", h, text))
        if i % 20 == 1:
            rows.append((project, f"r{i:03d}", h, text))
    return rows


def _warehouse(path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    ensure_schema(con)
    con.executemany("insert into pipeline.event_texts values (?, ?, 'prompt', ?, ?)", _rows())
    return con


def _mapped(con, settings: Settings, embedder, run_id: str = "turret_hourly/2026-01-01T10:00:00Z") -> list:
    partitions = plan(con, settings, run_id=run_id)
    for partition in partitions:
        embed_partitions.embed_partition(settings, partition, embedder)
    merge(con, settings, partitions)
    return partitions


def _embeddings(con) -> dict[str, np.ndarray]:
    sql = "select text_hash, vector from pipeline.embeddings where model = ?"
    rows = con.execute(sql, [MODEL]).fetchall()
    return {h: np.asarray(v, dtype=np.float32) for h, v in rows}


def _topics(con) -> tuple[list, list]:
    assigned = con.execute("select project_id, field, event_id, topic_id, assigned_by "
                           "from pipeline.event_topics order by all").fetchall()
    topics = con.execute("select project_id, field, topic_id, size, status from pipeline.topics "
                         "order by all").fetchall()
    return assigned, topics


def test_mapped_embedding_gives_the_single_task_vectors_and_topics(tmp_path, embedder):
    single = _warehouse(tmp_path / "single.duckdb")
    mapped = _warehouse(tmp_path / "mapped.duckdb")
    settings = Settings(home=tmp_path / "home", embed_partition_texts=25)
    try:
        assert embed_pending(single, embedder) == 200
        partitions = _mapped(mapped, settings, embedder)

        # Bounded partitions by project and hash range; every pending text in exactly one.
        assert all(0 < p["texts"] <= 25 for p in partitions)
        assert sum(p["texts"] for p in partitions) == 200
        assert {p["project_id"] for p in partitions} == {"p1", "p2"}
        for p in partitions:
            assert p["hash_from"] <= p["hash_to"]
        by_project = {}
        for p in partitions:
            by_project.setdefault(p["project_id"], []).append(p)
        for parts in by_project.values():
            assert all(a["hash_to"] < b["hash_from"] for a, b in zip(parts, parts[1:], strict=False))
        # The run's files are gone once merged.
        assert not (tmp_path / "home" / "pipeline" / "embed" / partitions[0]["run"]).exists()

        a, b = _embeddings(single), _embeddings(mapped)
        assert sorted(a) == sorted(b) and len(a) == 200
        worst = max(float(np.abs(a[h] - b[h]).max()) for h in a)
        assert worst < 1e-5, worst
        print(f"largest difference between single and mapped vectors: {worst:.2e}")
        hashes = sorted(a)
        assert load_embeddings(mapped, MODEL, hashes).shape == (200, 384)

        for con in (single, mapped):
            update_topics(con, settings, run_id="r1")
        # The topic fit can split a topic differently on differences this small: the partitions of the
        # events into topics must agree closely, project by project.
        from sklearn.metrics import adjusted_rand_score

        got_single, got_mapped = _topics(single)[0], _topics(mapped)[0]
        assert [r[:3] for r in got_single] == [r[:3] for r in got_mapped] and len(got_mapped) == len(_rows())
        for project in ("p1", "p2"):
            a = [r[3] for r in got_single if r[0] == project]
            b = [r[3] for r in got_mapped if r[0] == project]
            assert adjusted_rand_score(a, b) >= 0.85, project
    finally:
        single.close()
        mapped.close()


def test_nothing_pending_plans_nothing_and_new_texts_only_are_planned(tmp_path, embedder):
    con = _warehouse(tmp_path / "wh.duckdb")
    settings = Settings(home=tmp_path / "home", embed_partition_texts=1000)
    try:
        first = _mapped(con, settings, embedder)
        # One partition per project; a text both projects sent goes to the first one (p1).
        assert [(p["project_id"], p["texts"]) for p in first] == [("p1", 127), ("p2", 73)]
        assert plan(con, settings, run_id="r2") == []
        assert merge(con, settings, []) == 0
        con.execute("insert into pipeline.event_texts values "
                    "('p2', 'n1', 'prompt', 'h-new', 'a brand new text')")
        again = plan(con, settings, run_id="r3")
        assert [(p["project_id"], p["texts"], p["hash_from"]) for p in again] == [("p2", 1, "h-new")]
    finally:
        con.close()


def test_partitions_on_a_url_are_idempotent_and_incomplete_ones_refused(tmp_path, embedder):
    # memory:// stands for a bucket: files travel through fsspec, not the local disk.
    settings = Settings(home=tmp_path / "home", pipeline_url="memory://turret-test/pipeline",
                        embed_partition_texts=60)
    con = _warehouse(tmp_path / "wh.duckdb")
    try:
        partitions = plan(con, settings, run_id="r1")
        assert len(partitions) >= 4
        first = embed_partitions.embed_partition(settings, partitions[0], embedder)
        assert first["texts_embedded"] == partitions[0]["texts"]
        again = embed_partitions.embed_partition(settings, partitions[0], embedder)
        assert again["texts_embedded"] == 0 and again["already_embedded"] == partitions[0]["texts"]
        with pytest.raises(PartitionError, match="partition 1 has no vectors"):
            merge(con, settings, partitions)
        assert not has_embeddings_table(con)  # nothing half-merged
        other = Settings(home=tmp_path / "home", pipeline_url=settings.pipeline_url,
                         embedding_backend="onnx", embed_partition_texts=60)
        with pytest.raises(PartitionError, match="planned for model 'all-MiniLM-L6-v2'"):
            embed_partitions.embed_partition(other, partitions[1], _Named(embedder, "all-MiniLM-L6-v2@onnx"))
        for p in partitions[1:]:
            embed_partitions.embed_partition(settings, p, embedder)
        assert merge(con, settings, partitions) == 200
        assert con.execute("select count(*) from pipeline.embeddings").fetchone()[0] == 200
    finally:
        con.close()


class _Named:
    """An embedder whose vectors are keyed under another name (as another backend's would be)."""

    def __init__(self, inner, cache_model_id: str) -> None:
        self.inner, self.cache_model_id = inner, cache_model_id
        self.model_name, self.dimension = inner.model_name, inner.dimension

    def encode(self, texts, *, progress=False):
        return self.inner.encode(texts, progress=progress)
