"""One place for every setting: defaults in code, ``TURRET_*`` environment variables override them.

``Settings.from_env()`` reads the environment once; tests build ``Settings(...)`` explicitly or set the
variables. docs/settings.md lists every setting in one table; tests/turret/test_settings.py keeps the
table and this module in step.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

ENV_PREFIX = "TURRET_"


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


def default_home() -> Path:
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

    # Ingest limits.
    max_body_bytes: int = 1_048_576
    max_text_length: int = 10_000
    max_batch_events: int = 500
    max_metadata_keys: int = 64
    max_id_length: int = 256
    max_future_skew_seconds: int = 600
    group_commit_ms: float = 2.0
    key_cache_seconds: float = 5.0

    # Serving.
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    threads: int = 8

    # Topic engine.
    embedding_model: str = "all-MiniLM-L6-v2"
    embedding_backend: str = "torch"
    embedding_batch_size: int = 64
    embedding_max_seq_length: int = 128
    scrub_pii: bool = True
    llm_model: str = "gpt-4o-mini"
    openai_api_key: str = ""
    openai_base_url: str = ""

    # Pipeline.
    task_retries: int = 2

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
    def published(self) -> Path:
        return Path(self.published_dir) if self.published_dir else Path(self.home) / "published"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
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
