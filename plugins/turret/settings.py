"""One place for every setting: defaults in code, ``TURRET_*`` environment variables override them.

``Settings.from_env()`` reads the environment once; tests build ``Settings(...)`` explicitly or set the
variables. docs/settings.md lists every setting in one table; tests/turret/test_settings.py keeps the
table and this module in step.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turret import topic_defaults

ENV_PREFIX = "TURRET_"


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


# The state folder `make demo`, `make up` and `make test` keep in the repository (the Makefile's TURRET_HOME).
LOCAL_HOME = ".turret"


def default_home() -> Path:
    """Where state lives when ``TURRET_HOME`` is not set: ``./.turret`` if the current directory has one (so
    the README's commands find what `make demo` wrote), else ``~/.turret``."""
    local = Path.cwd() / LOCAL_HOME
    if local.is_dir():
        return local.resolve()
    return Path(os.path.expanduser("~")) / ".turret"


@dataclass(frozen=True)
class Settings:
    """Runtime configuration. Paths derived from ``home`` unless set on their own."""

    # Where the embedded stores live: control plane, landing store, warehouse, published marts.
    home: Path = field(default_factory=default_home)
    # Control plane (projects, API keys, usage). Empty means SQLite at <home>/control.db.
    database_url: str = ""
    # Landing store root (append-only JSON Lines). Empty means <home>/landing.
    landing_dir: str = ""
    # DuckDB warehouse written only by pipeline tasks. Empty means <home>/warehouse.duckdb.
    warehouse_path: str = ""
    # Read-only copy of the marts for BI tools. Empty means <home>/published.
    published_dir: str = ""

    # Shared storage through fsspec (turret.storage, docs/scaling.md). Where the loader reads sealed
    # segments (e.g. s3://bucket/landing); empty means the local landing store.
    landing_url: str = ""
    # Where Parquet marts are published with a current.json pointer; empty means <published>/parquet.
    publish_url: str = ""
    # JSON object of fsspec options for those URLs (e.g. {"anon": false}); empty means none.
    storage_options: str = ""
    # Endpoint of an S3-compatible server (MinIO, Ceph, R2, ...) for s3:// URLs; empty means AWS.
    s3_endpoint_url: str = ""
    # Where pipeline tasks hand files to each other (the mapped embedding's partitions); a path or fsspec
    # URL every worker can reach. Empty means <home>/pipeline.
    pipeline_url: str = ""

    # Ingest limits.
    max_body_bytes: int = 1_048_576
    max_text_length: int = 10_000
    max_batch_events: int = 500
    max_metadata_keys: int = 64
    max_id_length: int = 256
    max_future_skew_seconds: int = 600
    group_commit_ms: float = 0.0
    key_cache_seconds: float = 5.0

    # Serving.
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    threads: int = 8
    # The dashboard (`turret ui`, docs/dashboard.md): its port and sign-in password. Empty password: one
    # is generated, printed once and kept in <home>/ui_password (mode 0600).
    ui_port: int = 8050
    ui_password: str = ""

    # Topic engine.
    embedding_model: str = "all-MiniLM-L6-v2"
    embedding_backend: str = "torch"
    # Arithmetic of the torch backend's matrix products: ``float32``; ``bfloat16``; ``auto``, bfloat16 where
    # the CPU has it natively (AVX512-BF16 or AMX: about twice as fast) and float32 elsewhere (turret.embed).
    embedding_precision: str = "float32"
    embedding_batch_size: int = 64
    embedding_max_seq_length: int = 128
    # Threads one embedding process computes with; 0: torch's default (every core). Set 1 when several
    # mapped embedding tasks share a host's cores (docs/scaling.md).
    embedding_threads: int = 0
    # Most texts one mapped embedding task embeds (partitions of pending texts by project and hash range).
    embed_partition_texts: int = 10_000
    scrub_pii: bool = True
    llm_model: str = "gpt-4o-mini"
    openai_api_key: str = ""
    openai_base_url: str = ""
    # Clustering knobs (turret.topics.store.EngineConfig; docs/topics_engine.md). Defaults are the tuned
    # values; the engine's tuned numbers come from turret.topic_defaults so they are written down once.
    topic_reducer: str = topic_defaults.REDUCER  # umap | pca | none
    topic_reducer_components: int = topic_defaults.REDUCER_COMPONENTS
    topic_min_cluster_size: int = 0  # 0: automatic (turret.topics.engine.auto_min_cluster_size)
    topic_min_samples: int = topic_defaults.MIN_SAMPLES
    topic_outlier_threshold: float = topic_defaults.OUTLIER_THRESHOLD
    topic_assign_threshold: float = topic_defaults.ASSIGN_THRESHOLD
    topic_refit_growth: float = 2.0
    topic_fit_sample: int = topic_defaults.FIT_SAMPLE  # 0: every text
    topic_drift_unclustered_share: float = 0.10
    topic_drift_similarity_drop: float = 0.10

    # Pipeline.
    task_retries: int = 2
    # How Airflow runs the pipeline's tasks under `turret up`: ``local`` (the scheduler's LocalExecutor) or
    # ``celery`` (a private redis-server broker and ``celery_workers`` `airflow celery worker` processes).
    executor: str = "local"
    # Celery worker processes `turret up` starts (one task slot each) with TURRET_EXECUTOR=celery.
    celery_workers: int = 2
    # The Celery broker. Empty: the redis-server `turret up` starts on 127.0.0.1:<redis_port>, data in
    # <home>/redis. Set (redis://host:port/0) for a broker other hosts' workers reach; `up` starts none.
    broker_url: str = ""
    redis_port: int = 6390
    # The Celery queue of every task that writes the warehouse: only workers on the warehouse's host serve
    # it. Other tasks (the mapped embedding) go to Airflow's default queue, ``default``.
    warehouse_queue: str = "turret_warehouse"

    def __post_init__(self) -> None:
        backend = str(self.embedding_backend).strip().lower()
        if backend not in EMBEDDING_BACKENDS:
            _invalid("embedding_backend", self.embedding_backend,
                     f"use one of {', '.join(EMBEDDING_BACKENDS)}")
        object.__setattr__(self, "embedding_backend", backend)
        precision = str(self.embedding_precision).strip().lower()
        if precision not in EMBEDDING_PRECISIONS:
            _invalid("embedding_precision", self.embedding_precision,
                     f"use one of {', '.join(EMBEDDING_PRECISIONS)}")
        object.__setattr__(self, "embedding_precision", precision)
        _check_range("embedding_threads", self.embedding_threads, 0, 1024, "threads (0: every core)")
        _check_range("embed_partition_texts", self.embed_partition_texts, 1, None,
                     "texts per embedding partition")
        executor = str(self.executor).strip().lower()
        if executor not in EXECUTORS:
            _invalid("executor", self.executor, f"use one of {', '.join(EXECUTORS)}")
        object.__setattr__(self, "executor", executor)
        _check_range("celery_workers", self.celery_workers, 1, 64, "Celery worker processes")
        _check_range("redis_port", self.redis_port, 1, 65535, "a TCP port")
        queue = str(self.warehouse_queue).strip()
        if not queue or "," in queue or any(c.isspace() for c in queue):
            _invalid("warehouse_queue", self.warehouse_queue, "a Celery queue name: no spaces or commas")
        reducer = str(self.topic_reducer).strip().lower()
        if reducer not in TOPIC_REDUCERS:
            _invalid("topic_reducer", self.topic_reducer, f"use one of {', '.join(TOPIC_REDUCERS)}")
        object.__setattr__(self, "topic_reducer", reducer)
        _check_range("topic_reducer_components", self.topic_reducer_components, 1, None,
                     "dimensions to reduce the embeddings to")
        mcs = self.topic_min_cluster_size
        if isinstance(mcs, bool) or not isinstance(mcs, int) or mcs < 0 or mcs == 1:
            _invalid("topic_min_cluster_size", mcs, "use 0 (automatic) or a size of 2 or more")
        _check_range("topic_min_samples", self.topic_min_samples, 1, None, "hdbscan's min_samples")
        _check_range("topic_outlier_threshold", self.topic_outlier_threshold, 0.0, 1.0, "a cosine similarity")
        _check_range("topic_assign_threshold", self.topic_assign_threshold, 0.0, 1.0, "a cosine similarity")
        _check_range("topic_refit_growth", self.topic_refit_growth, 1.0, None,
                     "a growth factor above 1", open_low=True)
        sample = self.topic_fit_sample
        if isinstance(sample, bool) or not isinstance(sample, int) or (sample != 0 and sample < 1000):
            _invalid("topic_fit_sample", sample, "use 0 (every text) or a sample of 1000 texts or more")
        _check_range("topic_drift_unclustered_share", self.topic_drift_unclustered_share, 0.0, 1.0,
                     "a share of all texts (1 turns the rule off)", open_low=True)
        _check_range("topic_drift_similarity_drop", self.topic_drift_similarity_drop, 0.0, 2.0,
                     "a drop in mean cosine similarity (2 turns the rule off)", open_low=True)

    @property
    def control_url(self) -> str:
        return self.database_url or f"sqlite:///{Path(self.home) / 'control.db'}"

    @property
    def landing_root(self) -> Path:
        return Path(self.landing_dir) if self.landing_dir else Path(self.home) / "landing"

    @property
    def warehouse(self) -> Path:
        return Path(self.warehouse_path) if self.warehouse_path else Path(self.home) / "warehouse.duckdb"

    @property
    def celery_broker(self) -> str:
        """The Celery broker URL: ``broker_url``, or the private redis-server of `turret up`."""
        return self.broker_url or f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def published(self) -> Path:
        return Path(self.published_dir) if self.published_dir else Path(self.home) / "published"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``TURRET_<FIELD>`` variables (and OPENAI_API_KEY / OPENAI_BASE_URL)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            names = [ENV_PREFIX + f.name.upper()]
            if f.name in ("openai_api_key", "openai_base_url"):
                names.append(f.name.upper())
            raw = next((env[n] for n in names if env.get(n) not in (None, "")), None)
            if raw is None:
                continue
            values[f.name] = _coerce(f, raw, names[0])
        values.update(overrides)
        return cls(**values)

    def as_env(self) -> dict[str, str]:
        """The environment that reproduces these settings in a child process."""
        env = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value in ("", None):
                continue
            if isinstance(value, bool):
                value = "true" if value else "false"
            env[ENV_PREFIX + f.name.upper()] = str(value)
        return env


TOPIC_REDUCERS = ("pca", "umap", "none")
# How Airflow runs tasks (turret.airflow_env): the LocalExecutor, or Celery workers.
EXECUTORS = ("local", "celery")
# The embedding backends turret.embed implements: torch (default) or onnx (onnxruntime).
EMBEDDING_BACKENDS = ("torch", "onnx")
# Arithmetic of the torch backend: float32 (default), bfloat16, or bfloat16 where the CPU has it natively.
EMBEDDING_PRECISIONS = ("float32", "bfloat16", "auto")


def _invalid(name: str, value: Any, why: str) -> None:
    raise SettingsError(f"{ENV_PREFIX}{name.upper()}={value!r} is not valid: {why}")


def _check_range(
    name: str, value: Any, low: float, high: float | None, what: str, *, open_low: bool = False
) -> None:
    """``value`` within [low, high] (``(low, high]`` with ``open_low``; no upper bound when high is None)."""
    integer = Settings.__dataclass_fields__[name].type == "int"
    kinds = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or math.isnan(value):
        _invalid(name, value, f"not {'an integer' if integer else 'a number'} ({what})")
    too_low = value <= low if open_low else value < low
    if too_low or (high is not None and value > high):
        lo = f"> {low:g}" if open_low else f">= {low:g}"
        bound = lo if high is None else f"{lo} and <= {high:g}"
        _invalid(name, value, f"must be {bound} ({what})")


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(f: dataclasses.Field, raw: str, name: str) -> Any:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    try:
        if kind == "bool":
            low = raw.strip().lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError(raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "Path":
            return Path(os.path.expanduser(raw))
        return raw
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a valid {kind}") from None


def get_settings() -> Settings:
    return Settings.from_env()
