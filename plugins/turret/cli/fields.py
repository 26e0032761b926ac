"""``turret fields``: see and override how each metadata field of a project is typed (text, enum, number)."""

from __future__ import annotations

import json
from typing import Any

import click

from turret.settings import Settings, SettingsError

TYPE_CHOICES = ("text", "enum", "number", "auto")


def _resolve_project(con: Any, project: str) -> str:
    """A project id from an id or a name (names from raw.projects, the control plane's snapshot)."""
    by_id = con.execute("select project_id from raw.projects where project_id = ?", [project]).fetchall()
    if by_id:
        return by_id[0][0]
    by_name = con.execute(
        "select project_id from raw.projects where lower(name) = lower(?) order by project_id", [project]
    ).fetchall()
    if len(by_name) == 1:
        return by_name[0][0]
    if len(by_name) > 1:
        ids = ", ".join(r[0] for r in by_name)
        raise click.ClickException(f"more than one project is named {project!r} ({ids}): give the id")
    # Events of a project not yet in the snapshot still count when given by id.
    seen = con.execute(
        "select 1 from pipeline.fields where project_id = ? union all "
        "select 1 from raw.events where project_id = ? limit 1",
        [project, project],
    ).fetchall()
    if seen:
        return project
    raise click.ClickException(f"no project {project!r} in the warehouse (give a project name or id)")


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _open(settings: Settings, read_only: bool) -> Any:
    from turret.warehouse import connect

    try:
        return connect(settings, read_only=read_only)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:  # duckdb lock or I/O errors: one clear line, no traceback
        raise click.ClickException(f"cannot open the warehouse: {exc}") from None


@click.group()
def fields() -> None:
    """Metadata field types per project: only text fields are clustered into topics."""


@fields.command("list")
@click.argument("project")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_cmd(project: str, as_json: bool) -> None:
    """List PROJECT's fields: detected type, override, effective type and example values."""
    from turret.fields import list_fields

    settings = _settings()
    con = _open(settings, read_only=True)
    try:
        project_id = _resolve_project(con, project)
        rows = list_fields(con, project_id)
    finally:
        con.close()
    if settings.scrub_pii:
        # type_fields stores scrubbed examples; rows typed by an older version may still hold raw ones.
        for r in rows:
            r.examples = _scrubbed(r.examples)
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in rows], indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo(f"project {project_id} has no typed fields yet (the pipeline types them hourly)")
        return
    header = ("FIELD", "DETECTED", "OVERRIDE", "EFFECTIVE", "VALUES", "DISTINCT", "EXAMPLES")
    table = [
        (
            r.field,
            r.detected_type,
            r.override_type or "-",
            r.effective_type,
            str(r.n_values),
            str(r.n_distinct),
            _examples(r.examples),
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(header[:-1])]
    for line in (header, *table):
        click.echo("  ".join(v.ljust(w) for v, w in zip(line[:-1], widths, strict=True)) + "  " + line[-1])


def _scrubbed(values: list[Any]) -> list[Any]:
    from turret.scrub import scrub

    return [scrub(v) if isinstance(v, str) else v for v in values]


def _examples(values: list[Any], width: int = 60) -> str:
    text = ", ".join(json.dumps(v, ensure_ascii=False) for v in values)
    return text if len(text) <= width else text[: width - 1] + "…"


@fields.command("set")
@click.argument("project")
@click.argument("key")
@click.option(
    "--type",
    "type_",
    required=True,
    type=click.Choice(TYPE_CHOICES),
    help="The type to use from now on; auto clears the override and uses the detected type.",
)
def set_cmd(project: str, key: str, type_: str) -> None:
    """Override the type of field KEY in PROJECT (text, enum, number), or go back to detection (auto).

    The override is recorded in the control plane (as the dashboard's Settings → Metadata does), so every
    later pipeline run keeps it, and applied to the warehouse at once.
    """
    from turret import field_overrides
    from turret.controlplane import ControlPlane
    from turret.fields import FieldError, set_override

    settings = _settings()
    con = _open(settings, read_only=False)
    try:
        project_id = _resolve_project(con, project)
        row = set_override(con, project_id, key, type_, settings=settings)
    except FieldError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        con.close()
    control_plane = ControlPlane.from_settings(settings)
    try:
        field_overrides.save(control_plane, project_id, key, type_)
    finally:
        control_plane.dispose()
    how = "override cleared" if row.override_type is None else f"override {row.override_type}"
    click.echo(f"{row.field}: {how}; effective type {row.effective_type} (detected {row.detected_type})")
