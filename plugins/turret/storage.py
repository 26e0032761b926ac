"""Where sealed landing segments and published Parquet marts live: a local folder or any fsspec URL.

The ingest API always writes its landing store on a local disk (it needs ``fsync``, atomic ``rename`` and
files of its own; ``turret.landing``). What happens after sealing goes through fsspec, so an S3-compatible
bucket is a setting (docs/scaling.md, docs/settings.md):

- ``TURRET_LANDING_URL``: where the loader finds sealed segments. Empty: the local landing store itself, read
  straight from disk as before. Otherwise :func:`ship_sealed` copies this host's sealed segments there
  (``python -m turret.storage ship``) and :func:`turret.loader.load_landing` lists and reads them there.
- ``TURRET_PUBLISH_URL``: where :func:`turret.publish.publish` puts the Parquet copy of the marts, next to the
  local DuckDB copy for BI tools. Empty: ``<published>/parquet`` on the local disk.
- ``TURRET_PIPELINE_URL``: where pipeline tasks hand files to each other (the mapped embedding's partitions,
  ``turret.embed_partitions``), reachable from every worker. Empty: ``<home>/pipeline``.
- ``TURRET_STORAGE_OPTIONS`` (a JSON object of fsspec options) and ``TURRET_S3_ENDPOINT_URL`` (an
  S3-compatible server: MinIO, Ceph, R2, ...) for both. Credentials come from the usual ``AWS_*`` variables
  or the machine's role, or from the options.

Shipping is idempotent: a segment already at the URL with the same size is skipped (a sealed segment never
changes), and nothing half-copied is ever visible under a segment's name: object stores make a ``PUT``
visible only once complete; on a filesystem the copy is written under a hidden ``.partial`` name and renamed.

Published Parquet under a URL (the pointer is written last, so a reader sees a whole snapshot or the old
one)::

    <url>/<stamp>/<table>.parquet
    <url>/current.json     {"stamp": ..., "published_at": ..., "tables": {"<table>": {"path", "rows"}}}

Readers read ``current.json`` first (:func:`read_pointer`, :func:`mart_path`, :func:`read_mart`); the local
``<published>/parquet`` folder has the ``current`` symlink instead (turret.publish), read the same way.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from fsspec import AbstractFileSystem

    from turret.settings import Settings

log = logging.getLogger(__name__)

POINTER_NAME = "current.json"
PARTIAL_SUFFIX = ".partial"
_S3_PROTOCOLS = ("s3", "s3a")


class StorageError(RuntimeError):
    """A location cannot be used (bad options, conflicting segment, no published pointer); says what to do."""


# ------------------------------------------------------------------------------------------------ locations


def is_local(url: str | os.PathLike[str]) -> bool:
    """Whether ``url`` is a plain path (or ``file://``): the loader then reads it straight from disk."""
    from fsspec.utils import get_protocol

    return get_protocol(str(url)) in ("file", "local")


def local_path(url: str | os.PathLike[str]) -> Path:
    """The filesystem path of a local ``url`` (a plain path or ``file://...``)."""
    text = str(url)
    for prefix in ("file://", "local://"):
        if text.startswith(prefix):
            return Path(text[len(prefix):])
    return Path(text)


def landing_url(settings: Settings) -> str:
    """Where the loader reads sealed segments: ``TURRET_LANDING_URL``, else the local landing store."""
    return settings.landing_url or str(settings.landing_root)


def publish_url(settings: Settings) -> str:
    """Where Parquet marts are published: ``TURRET_PUBLISH_URL``, else ``<published>/parquet``."""
    return settings.publish_url or str(Path(settings.published) / "parquet")


def pipeline_url(settings: Settings) -> str:
    """Where pipeline tasks hand files to each other: ``TURRET_PIPELINE_URL``, else ``<home>/pipeline``."""
    return settings.pipeline_url or str(Path(settings.home) / "pipeline")


def storage_options(settings: Settings, url: str | None = None) -> dict[str, Any]:
    """fsspec options for ``url``: ``TURRET_STORAGE_OPTIONS``, plus ``TURRET_S3_ENDPOINT_URL`` for s3://."""
    from turret.settings import SettingsError

    options: dict[str, Any] = {}
    if settings.storage_options.strip():
        try:
            options = json.loads(settings.storage_options)
        except ValueError as exc:
            raise SettingsError(f"TURRET_STORAGE_OPTIONS is not valid JSON: {exc}") from None
        if not isinstance(options, dict):
            raise SettingsError("TURRET_STORAGE_OPTIONS must be a JSON object of fsspec options")
    if settings.s3_endpoint_url and (url is None or _protocol(url) in _S3_PROTOCOLS):
        options.setdefault("endpoint_url", settings.s3_endpoint_url)
    if url is not None and is_local(url):
        return {}  # Local paths take no options (and a local fs would reject S3 ones).
    return options


def _protocol(url: str) -> str:
    from fsspec.utils import get_protocol

    return get_protocol(url)


def resolve(
    url: str | os.PathLike[str], options: Mapping[str, Any] | None = None
) -> tuple[AbstractFileSystem, str]:
    """``(filesystem, path in it)`` for ``url``; no options for local paths."""
    from fsspec.core import url_to_fs

    text = str(url)
    opts = {} if is_local(text) else dict(options or {})
    try:
        fs, root = url_to_fs(text, **opts)
    except ImportError as exc:
        raise StorageError(f"cannot open {text}: {exc} (install the fsspec backend for this URL)") from None
    return fs, root.rstrip("/") or root


def _join(root: str, key: str) -> str:
    return f"{root.rstrip('/')}/{key.lstrip('/')}"


def _protocol_of(fs: AbstractFileSystem) -> str:
    return fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]


def _is_local_fs(fs: AbstractFileSystem) -> bool:
    return _protocol_of(fs) in ("file", "local")


def _put_atomic(fs: AbstractFileSystem, source: Path, dest: str) -> None:
    """Copy ``source`` to ``dest`` so that ``dest`` is either absent or complete."""
    parent = dest.rsplit("/", 1)[0]
    fs.makedirs(parent, exist_ok=True)
    if _is_local_fs(fs) or _protocol_of(fs) == "memory":
        # A filesystem: write a hidden temporary name next to it, then rename (atomic within one filesystem).
        name = dest.rsplit("/", 1)[1]
        tmp = f"{parent}/.{name}.{secrets.token_hex(4)}{PARTIAL_SUFFIX}"
        fs.put_file(str(source), tmp)
        fs.mv(tmp, dest)
    else:
        # Object stores (S3 and alike): a PUT becomes visible only once complete.
        fs.put_file(str(source), dest)


def _write_bytes_atomic(fs: AbstractFileSystem, dest: str, data: bytes) -> None:
    with tempfile.NamedTemporaryFile(prefix="turret-", delete=False) as fh:
        fh.write(data)
    try:
        _put_atomic(fs, Path(fh.name), dest)
    finally:
        os.unlink(fh.name)


# ------------------------------------------------------------------------------------------ landing segments


@dataclass
class ShipStats:
    """What one :func:`ship_sealed` call did."""

    shipped: int = 0
    skipped: int = 0
    bytes: int = 0


def ship_sealed(
    local_root: str | os.PathLike[str], url: str, options: Mapping[str, Any] | None = None
) -> ShipStats:
    """Copy every sealed segment under ``local_root`` to ``url`` (same relative paths) unless already there.

    Never copies an open segment. A segment already at ``url`` with another size is an error: sealed segments
    never change, so two different files carry one name.
    """
    from turret.landing import iter_sealed_segments

    stats = ShipStats()
    root = Path(local_root)
    if not root.exists():
        return stats
    fs, dest_root = resolve(url, options)
    if _is_local_fs(fs) and Path(dest_root).resolve() == root.resolve():
        return stats  # The landing URL is the landing store itself.
    fs.invalidate_cache()
    for path in iter_sealed_segments(root):
        key = path.relative_to(root).as_posix()
        dest = _join(dest_root, key)
        size = path.stat().st_size
        if fs.exists(dest):
            there = fs.size(dest)
            if there == size:
                stats.skipped += 1
                continue
            raise StorageError(
                f"segment {key} is already at {url} with {there} bytes, {size} here: "
                "sealed segments never change, so check that two landing stores do not share host names"
            )
        _put_atomic(fs, path, dest)
        stats.shipped += 1
        stats.bytes += size
    if stats.shipped:
        log.info("shipped %d segment(s), %d bytes, to %s", stats.shipped, stats.bytes, url)
    return stats


def list_sealed(url: str, options: Mapping[str, Any] | None = None) -> list[str]:
    """Sealed segments at ``url`` as keys relative to it (``date=.../hour=.../<name>.jsonl``), sorted."""
    from turret.landing import OPEN_SUFFIX, SEALED_SUFFIX

    fs, root = resolve(url, options)
    fs.invalidate_cache()
    if not fs.exists(root):
        return []
    keys = []
    prefix = root.rstrip("/") + "/"
    for found in fs.glob(_join(root, f"date=*/hour=*/*{SEALED_SUFFIX}")):
        found = str(found)
        name = found.rsplit("/", 1)[-1]
        if name.startswith(".") or name.endswith(OPEN_SUFFIX) or not name.endswith(SEALED_SUFFIX):
            continue
        keys.append(found[len(prefix):] if found.startswith(prefix) else found)
    return sorted(keys)


@contextmanager
def local_copy(url: str, key: str, options: Mapping[str, Any] | None = None) -> Iterator[Path]:
    """A local file with the content of ``<url>/<key>``: the file itself when local, else a temporary copy."""
    fs, root = resolve(url, options)
    with local_file(fs, _join(root, key)) as path:
        yield path


@contextmanager
def local_file(fs: Any, path: str) -> Iterator[Path]:
    """A local file with the content of ``path`` on ``fs``: the file itself when ``fs`` is local, else a
    temporary copy removed on exit."""
    if _is_local_fs(fs):
        yield Path(path)
        return
    folder = Path(tempfile.mkdtemp(prefix="turret-fetch-"))
    try:
        target = folder / path.rsplit("/", 1)[-1]
        fs.get_file(path, str(target))
        yield target
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def ship_landing(settings: Settings) -> ShipStats:
    """Ship this host's sealed segments to ``TURRET_LANDING_URL``; nothing to do when it is unset."""
    if not settings.landing_url:
        return ShipStats()
    url = settings.landing_url
    return ship_sealed(settings.landing_root, url, storage_options(settings, url))


# ------------------------------------------------------------------------------------------ published marts


def publish_parquet(
    source_dir: Path,
    url: str,
    stamp: str,
    tables: Mapping[str, int],
    *,
    published_at: str,
    options: Mapping[str, Any] | None = None,
    keep: int = 3,
) -> dict[str, Any]:
    """Upload ``source_dir/<table>.parquet`` to ``<url>/<stamp>/``, then switch ``<url>/current.json`` to it.

    ``tables`` maps each table to its row count. The pointer is written last; older snapshots beyond ``keep``
    are removed (never the current one). Returns the pointer.
    """
    fs, root = resolve(url, options)
    local_same = _is_local_fs(fs) and Path(root).resolve() == Path(source_dir).parent.resolve()
    if not local_same:
        for table in tables:
            _put_atomic(fs, Path(source_dir) / f"{table}.parquet", _join(root, f"{stamp}/{table}.parquet"))
    pointer = {
        "format": 1,
        "stamp": stamp,
        "published_at": published_at,
        "tables": {t: {"path": f"{stamp}/{t}.parquet", "rows": int(n)} for t, n in tables.items()},
    }
    _write_bytes_atomic(fs, _join(root, POINTER_NAME), json.dumps(pointer, indent=1).encode())
    if not local_same:
        _prune_remote(fs, root, stamp, keep)
    return pointer


def _prune_remote(fs: AbstractFileSystem, root: str, current: str, keep: int) -> None:
    fs.invalidate_cache()
    stamps = sorted(
        name
        for entry in fs.ls(root, detail=True)
        if entry.get("type") == "directory"
        and not (name := str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]).startswith(".")
    )
    for old in stamps[:-keep] if keep else stamps:
        if old != current:
            fs.rm(_join(root, old), recursive=True)


def read_pointer(url: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``current.json`` of a publish URL; ``StorageError`` when nothing was published there."""
    fs, root = resolve(url, options)
    fs.invalidate_cache()
    try:
        data = fs.cat_file(_join(root, POINTER_NAME))
    except FileNotFoundError:
        if _is_local_fs(fs) and (pointer := _local_symlink_pointer(Path(root))) is not None:
            return pointer
        raise StorageError(f"nothing published at {url}: run the pipeline (publish task) first") from None
    return json.loads(data)


def _local_symlink_pointer(root: Path) -> dict[str, Any] | None:
    """The pointer of the local ``<published>/parquet`` folder, whose ``current`` symlink is the pointer."""
    link = root / "current"
    if not link.is_symlink():
        return None
    stamp = os.readlink(link)
    files = sorted((root / stamp).glob("*.parquet"))
    return {
        "format": 1,
        "stamp": stamp,
        "published_at": None,
        "tables": {p.stem: {"path": f"{stamp}/{p.name}", "rows": None} for p in files},
    }


def mart_path(url: str, table: str, options: Mapping[str, Any] | None = None) -> str:
    """The URL of ``table``'s current Parquet file under a publish URL."""
    pointer = read_pointer(url, options)
    try:
        rel = pointer["tables"][table]["path"]
    except KeyError:
        raise StorageError(f"no mart {table!r} in the snapshot published at {url}") from None
    return _join(str(url), rel)


def read_mart(url: str, table: str, options: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """``table`` of the current snapshot under a publish URL, as a pandas frame (read with DuckDB)."""
    import duckdb

    pointer = read_pointer(url, options)
    try:
        rel = pointer["tables"][table]["path"]
    except KeyError:
        raise StorageError(f"no mart {table!r} in the snapshot published at {url}") from None
    with local_copy(url, rel, options) as path:
        con = duckdb.connect()
        try:
            return con.execute("select * from read_parquet(?)", [str(path)]).df()
        finally:
            con.close()


# ---------------------------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    """``python -m turret.storage ship [--every SECONDS]``: ship sealed segments to TURRET_LANDING_URL."""
    from turret.settings import Settings

    parser = argparse.ArgumentParser(prog="python -m turret.storage")
    sub = parser.add_subparsers(dest="command", required=True)
    ship = sub.add_parser("ship", help="copy this host's sealed landing segments to TURRET_LANDING_URL")
    ship.add_argument("--every", type=float, default=0, help="repeat every SECONDS (0: once)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = Settings.from_env()
    if not settings.landing_url:
        print("TURRET_LANDING_URL is not set: the loader reads the local landing store, nothing to ship")
        return 0
    while True:
        stats = ship_landing(settings)
        print(f"shipped {stats.shipped}, already there {stats.skipped} ({stats.bytes} bytes) "
              f"to {settings.landing_url}", flush=True)
        if args.every <= 0:
            return 0
        time.sleep(args.every)


if __name__ == "__main__":
    sys.exit(main())
