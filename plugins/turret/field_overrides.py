"""Field type overrides, kept in the control plane: the one place a person's choice of a field's type lives.

``turret fields set`` and the dashboard's Settings → Metadata page both call :func:`save`; the pipeline's
field typing (:func:`turret.fields.type_fields`) reads :func:`load` on every run and applies it, so an
override takes effect in the next run wherever it was made (``turret fields set`` also applies it to the
warehouse at once). A row with a null type records that the override was cleared ("auto"), which also clears
an override the warehouse still holds from before. Nothing here opens the warehouse: the dashboard must not.
"""

from __future__ import annotations

import threading
import weakref
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from turret.controlplane import ControlPlane

TYPES = ("text", "enum", "number")
AUTO = "auto"

metadata = sa.MetaData()
field_overrides_table = sa.Table(
    "field_overrides",
    metadata,
    sa.Column("project_id", sa.String(64), primary_key=True),
    sa.Column("field", sa.String(256), primary_key=True),
    sa.Column("override_type", sa.String(16), nullable=True),  # null: cleared, detection decides
    sa.Column("updated_at", sa.DateTime, nullable=False),
)


class OverrideError(ValueError):
    """An override that cannot be saved; the message says why."""


_ready: weakref.WeakSet = weakref.WeakSet()
_ready_lock = threading.Lock()


def _engine(control_plane: ControlPlane) -> sa.Engine:
    """The control plane's engine, with the overrides table created (once per engine)."""
    engine = control_plane.engine
    with _ready_lock:
        if engine not in _ready:
            metadata.create_all(engine)
            _ready.add(engine)
    return engine


def normalise(type_: str | None) -> str | None:
    """``text``/``enum``/``number``, or None for ``auto`` (clear); :class:`OverrideError` otherwise."""
    if type_ is None or type_ == AUTO:
        return None
    if type_ not in TYPES:
        raise OverrideError(f"unknown type {type_!r}: use one of {', '.join(TYPES)} or {AUTO}")
    return type_


def save(control_plane: ControlPlane, project_id: str, field: str, type_: str | None) -> str | None:
    """Record ``field``'s override for ``project_id`` (``auto``/None clears it); returns the stored type."""
    override = normalise(type_)
    if not field or len(field) > 256:
        raise OverrideError("give a field name of at most 256 characters")
    now = datetime.now(UTC).replace(tzinfo=None)
    key = (field_overrides_table.c.project_id == project_id) & (field_overrides_table.c.field == field)
    with _engine(control_plane).begin() as con:
        updated = con.execute(field_overrides_table.update().where(key)
                              .values(override_type=override, updated_at=now)).rowcount
        if not updated:
            con.execute(field_overrides_table.insert().values(
                project_id=project_id, field=field, override_type=override, updated_at=now))
    return override


def load(control_plane: ControlPlane, project_id: str | None = None) -> dict[tuple[str, str], str | None]:
    """``{(project_id, field): type or None (cleared)}`` for every recorded override."""
    query = sa.select(field_overrides_table.c.project_id, field_overrides_table.c.field,
                      field_overrides_table.c.override_type)
    if project_id is not None:
        query = query.where(field_overrides_table.c.project_id == project_id)
    with _engine(control_plane).connect() as con:
        return {(pid, name): ov for pid, name, ov in con.execute(query)}


def load_for(settings, project_id: str | None = None) -> dict[tuple[str, str], str | None]:
    """:func:`load` through a control plane opened (and closed) for this call: the pipeline's way."""
    from turret.controlplane import ControlPlane

    control_plane = ControlPlane.from_settings(settings)
    try:
        return load(control_plane, project_id)
    finally:
        control_plane.dispose()
