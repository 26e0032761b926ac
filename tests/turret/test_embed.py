"""Embeddings with the real packaged model, and the warehouse cache that embeds each distinct text once."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest
from turret import embed
from turret.embed import EmbeddingError, SentenceTransformerEmbedder, embed_pending, load_embeddings
from turret.settings import Settings
from turret.warehouse import ensure_schema

pytestmark = pytest.mark.slow

TEXTS = [
    "How do I reset my password?",
    "ok",
    "I forgot my login credentials and the reset email never arrived, what can I do now?",
    "What does the pro plan cost per month?",
    "Why was my card charged twice this month?",
]


@pytest.fixture(scope="session")
def embedder():
    # One thread: other test processes share the two cores (STACK.md).
    return SentenceTransformerEmbedder(batch_size=2, num_threads=1)


def test_encode_shape_norm_and_order(embedder):
    vectors = embedder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Batching sorts by length; rows must still come back in input order.
    one_by_one = np.vstack([embedder.encode([t]) for t in TEXTS])
    assert np.allclose(vectors, one_by_one, atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 2] > sims[0, 3]  # password reset is nearer to forgotten credentials than to pricing
    assert embedder.encode([]).shape == (0, 384)


def test_both_packaged_names_resolve_to_the_same_model(embedder):
    other = SentenceTransformerEmbedder("sentence-transformers/all-MiniLM-L6-v2", batch_size=2)
    assert np.allclose(other.encode(TEXTS[:2]), embedder.encode(TEXTS[:2]), atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model_name": "/no/such/model"}, "cannot load embedding model '/no/such/model' offline"),
        ({"backend": "onnx-int8"}, "unknown embedding backend 'onnx-int8': use one of torch, onnx"),
        ({"batch_size": 0}, "must be positive"),
    ],
)
def test_bad_arguments_fail_clearly(kwargs, message):
    with pytest.raises(EmbeddingError, match=message):
        SentenceTransformerEmbedder(**kwargs)


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-models")


@pytest.fixture(scope="session")
def onnx_embedder(onnx_cache):
    return SentenceTransformerEmbedder(backend="onnx", batch_size=2, num_threads=1, cache_dir=onnx_cache)


def test_onnx_backend_matches_torch(embedder, onnx_embedder):
    vectors = onnx_embedder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = (vectors * embedder.encode(TEXTS)).sum(axis=1)
    assert cosines.min() >= 0.999, cosines
    # Length-sorted batches come back in input order here too.
    one_by_one = np.vstack([onnx_embedder.encode([t]) for t in TEXTS])
    assert np.allclose(vectors, one_by_one, atol=1e-5)
    assert onnx_embedder.encode([]).shape == (0, 384)
    # Its own cache key, as turret.topics.store.model_key derives it from the settings.
    assert onnx_embedder.cache_model_id == "all-MiniLM-L6-v2@onnx"
    assert embedder.cache_model_id == "all-MiniLM-L6-v2"


def test_onnx_export_is_cached(onnx_embedder, onnx_cache):
    path = onnx_embedder.onnx_path
    assert onnx_embedder.exported and path.parent == onnx_cache and path.suffix == ".onnx"
    assert [p.name for p in onnx_cache.iterdir()] == [path.name]  # no temporary file left behind
    mtime = path.stat().st_mtime_ns
    again = SentenceTransformerEmbedder(backend="onnx", batch_size=2, num_threads=1, cache_dir=onnx_cache)
    assert not again.exported and again.onnx_path == path and path.stat().st_mtime_ns == mtime
    assert np.allclose(again.encode(TEXTS[:2]), onnx_embedder.encode(TEXTS[:2]), atol=1e-6)


def test_damaged_onnx_cache_is_exported_again(onnx_embedder, tmp_path):
    cached = onnx_embedder.onnx_path
    damaged = tmp_path / cached.name
    damaged.write_bytes(b"not an onnx model")
    rebuilt = SentenceTransformerEmbedder(backend="onnx", batch_size=2, num_threads=1, cache_dir=tmp_path)
    assert rebuilt.exported and rebuilt.onnx_path == damaged and damaged.stat().st_size > 1_000_000


def test_settings_accept_the_embedder_backends():
    from turret.settings import SettingsError

    assert Settings(embedding_backend=" ONNX ").embedding_backend == "onnx"
    with pytest.raises(SettingsError, match="BACKEND='openvino' is not valid: use one of torch, onnx"):
        Settings(embedding_backend="openvino")


def test_bfloat16_gives_the_float32_vectors_within_a_cosine_of_0_9998():
    texts = [*TEXTS, "thank you :)", "yes", "no thanks", "Wie setze ich mein Passwort zurück?",
             "refund " * 200]
    fp32 = SentenceTransformerEmbedder(precision="float32", batch_size=4, num_threads=1)
    bf16 = SentenceTransformerEmbedder(precision="bfloat16", batch_size=4, num_threads=1)
    assert (fp32.precision, bf16.precision) == ("float32", "bfloat16")
    a, b = fp32.encode(texts), bf16.encode(texts)
    assert b.dtype == np.float32 and np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-6)
    assert not np.array_equal(a, b)  # the products really ran in bfloat16
    cosines = (a * b).sum(axis=1)
    assert cosines.min() >= 0.9998, cosines
    # Close enough to share the cache: switching precision does not embed every text again.
    assert fp32.cache_model_id == bf16.cache_model_id == "all-MiniLM-L6-v2"


def test_auto_precision_is_bfloat16_where_the_cpu_has_it_natively():
    assert SentenceTransformerEmbedder(batch_size=2, num_threads=1).precision == "float32"  # the default
    flags: set[str] = set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                flags.update(line.split(":", 1)[1].split())
        assert embed.native_bfloat16() == bool(flags & {"avx512_bf16", "amx_tile"})
    expected = "bfloat16" if embed.native_bfloat16() else "float32"
    assert embed.resolve_precision("auto", "torch", "cpu") == expected
    assert embed.resolve_precision("float32", "torch", "cpu") == "float32"
    assert embed.resolve_precision("auto", "onnx", "cpu") == "float32"
    with pytest.raises(EmbeddingError, match="bfloat16 runs with the torch backend on the CPU only"):
        embed.resolve_precision("bfloat16", "onnx", "cpu")
    with pytest.raises(EmbeddingError, match="unknown embedding precision 'fp8'"):
        SentenceTransformerEmbedder(precision="fp8")


def test_settings_accept_the_embedding_precisions():
    from turret.settings import SettingsError

    assert Settings().embedding_precision == "float32"
    assert Settings(embedding_precision=" BFloat16 ").embedding_precision == "bfloat16"
    with pytest.raises(SettingsError,
                       match="PRECISION='fp16' is not valid: use one of float32, bfloat16, auto"):
        Settings(embedding_precision="fp16")


def test_precision_and_threads_reach_the_embedder_from_the_settings():
    import torch
    from turret.settings import SettingsError

    embedder = embed.get_embedder(Settings(embedding_precision="bfloat16", embedding_threads=1))
    assert embedder.precision == "bfloat16" and torch.get_num_threads() == 1
    assert embed.get_embedder(Settings()).precision == "float32"
    with pytest.raises(SettingsError, match="TURRET_EMBEDDING_THREADS=-1 is not valid"):
        Settings(embedding_threads=-1)


def test_get_embedder_is_cached_per_settings():
    first = embed.get_embedder(Settings())
    assert embed.get_embedder(Settings()) is first
    assert isinstance(first, embed.Embedder) and first.dimension == 384


class CountingEmbedder:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, inner):
        self.inner = inner
        self.model_name = inner.model_name
        self.dimension = inner.dimension
        self.seen: list[str] = []

    def encode(self, texts, *, progress=False):
        self.seen.extend(texts)
        return self.inner.encode(texts, progress=progress)


@pytest.fixture
def con(tmp_path):
    c = duckdb.connect(str(tmp_path / "wh.duckdb"))
    ensure_schema(c)
    yield c
    c.close()


def add_texts(con, rows):
    con.executemany("insert into pipeline.event_texts values ('p1', ?, 'prompt', ?, ?)", rows)


def test_embed_pending_embeds_each_distinct_text_once(con, embedder):
    counting = CountingEmbedder(embedder)
    add_texts(con, [("e1", "h1", TEXTS[0]), ("e2", "h1", TEXTS[0]), ("e3", "h2", TEXTS[3])])
    assert embed_pending(con, counting) == 2
    assert sorted(counting.seen) == sorted([TEXTS[0], TEXTS[3]])
    assert embed_pending(con, counting) == 0  # cached
    add_texts(con, [("e4", "h3", TEXTS[4]), ("e5", "h2", TEXTS[3])])
    assert embed_pending(con, counting) == 1
    assert counting.seen[-1] == TEXTS[4]

    vectors = load_embeddings(con, embedder.model_name, ["h3", "h1", "h1"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(vectors[0], embedder.encode([TEXTS[4]])[0], atol=1e-5)
    assert np.array_equal(vectors[1], vectors[2])
    assert load_embeddings(con, embedder.model_name, []).shape == (0, 384)
    with pytest.raises(KeyError, match="1 text hash"):
        load_embeddings(con, embedder.model_name, ["h1", "nope"])
    with pytest.raises(KeyError):
        load_embeddings(con, "another-model", ["h1"])
    declared = con.execute(
        "select data_type from information_schema.columns "
        "where table_name = 'embeddings' and column_name = 'vector'"
    ).fetchall()
    assert declared == [("FLOAT[384]",)]


def test_cache_of_another_dimension_is_refused(con):
    con.execute("create table pipeline.embeddings (model varchar, text_hash varchar, vector float[8], "
                "primary key (model, text_hash))")

    class Tiny:
        model_name, dimension = "tiny", 16

        def encode(self, texts, *, progress=False):
            return np.ones((len(texts), 16), dtype=np.float32) / 4

    add_texts(con, [("e1", "h1", "x")])
    with pytest.raises(EmbeddingError, match="FLOAT\\[8\\] vectors but the embedder makes 16-d"):
        embed_pending(con, Tiny())
