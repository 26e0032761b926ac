"""``turret projects``: create projects, list them with their usage, and manage their API keys.

Commands that issue a key print it alone on their last line, so scripts can do ``| tail -1``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NoReturn

import click

from turret.settings import Settings, SettingsError


class CommandError(click.ClickException):
    """A clear, one-line error; exit status 2 for bad input (like click's own usage errors)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = code


def fail(message: str, code: int = 2) -> NoReturn:
    raise CommandError(message, code)


@contextmanager
def control_plane() -> Iterator[Any]:
    """The control plane of the current settings; its errors become one clear line, never a traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    from turret.controlplane import ControlPlane, ControlPlaneError

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        fail(str(exc))
    try:
        plane = ControlPlane.from_settings(settings)
    except (SQLAlchemyError, OSError) as exc:
        fail(f"cannot open the control plane at {_redact(settings.control_url)}: {_first_line(exc)}", code=1)
    try:
        yield plane
    except ControlPlaneError as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:
        fail(f"control plane error: {_first_line(exc)}", code=1)
    finally:
        plane.dispose()


def _first_line(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc).splitlines()[0]


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for an error message
        return "<control plane url>"


def _when(dt: datetime | None) -> str:
    return dt.strftime("%Y-%m-%d %H:%M UTC") if dt else "-"


def _describe_limit(project: Any) -> str:
    from turret.plans import describe_limit

    return describe_limit(project.plan, project.monthly_limit)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int] = frozenset()) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def fmt(cells: Sequence[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        padded = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in pairs)
        return "  ".join(padded).rstrip()

    return "\n".join([fmt(headers), *(fmt(r) for r in rows)])


@click.group()
def projects() -> None:
    """Projects, their plans and quotas, and their API keys."""


PLAN_CHOICE = click.Choice(["trial", "pro", "business", "enterprise"])


def _monthly_limit_option(help_text: str) -> Any:
    # Parsed as text and checked by turret.plans, so any out-of-range value is one line, never a traceback.
    return click.option("--monthly-limit", "monthly_limit", default=None, metavar="N", help=help_text)


def _parse_limit(text: str | None) -> int | None:
    from turret.plans import MAX_LIMIT, PlanError, check_plan

    if text is None:
        return None
    try:
        value = int(text.strip().replace("_", ""))
    except ValueError:
        fail(f"--monthly-limit must be a whole number of events, got {text!r}")
    try:
        check_plan("pro", value)
    except PlanError:
        fail(f"--monthly-limit must be from 1 to {MAX_LIMIT:,}, got {text}")
    return value


@projects.command("create")
@click.argument("name")
@click.option("--plan", type=PLAN_CHOICE, required=True,
              help="trial: 250k events within 14 days; pro: 1M/month; business: 10M/month; "
                   "enterprise: custom.")
@_monthly_limit_option("Events per period; required for enterprise, overrides the plan's limit otherwise.")
def create(name: str, plan: str, monthly_limit: str | None) -> None:
    """Create project NAME and print its first API key (alone on the last line)."""
    limit = _parse_limit(monthly_limit)
    with control_plane() as plane:
        project, key = plane.create_project(name, plan, limit)
        click.echo(f"Created project {project.name!r} on plan {project.plan}: {_describe_limit(project)}")
        click.echo(f"  project id: {project.project_id}")
        click.echo("API key (shown once; only its hash is stored):")
        click.echo(key)


@projects.command("set-plan")
@click.argument("name")
@click.argument("plan", type=PLAN_CHOICE)
@_monthly_limit_option("Events per period; required for enterprise. Without it the plan's own limit applies.")
def set_plan(name: str, plan: str, monthly_limit: str | None) -> None:
    """Put project NAME (or id) on PLAN; a change of plan starts a new quota period now."""
    limit = _parse_limit(monthly_limit)
    with control_plane() as plane:
        before = plane.get_project(name)
        project = plane.set_plan(before.project_id, plan, limit)
        period = plane.period(project)
        click.echo(f"Project {project.name!r} is on plan {project.plan}: {_describe_limit(project)}")
        click.echo(
            f"  current period {_when(period.start)} .. {_when(period.end)}; running servers use the new "
            f"terms within {plane.key_cache_seconds:g} s"
        )


@projects.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(as_json: bool) -> None:
    """Every project with its plan, limit and the events accepted in the current period."""
    with control_plane() as plane:
        plane.reclaim_dead_leases()  # leases of servers killed without shutting down are not usage
        rows = []
        for p in plane.list_projects():
            period = plane.period(p)
            rows.append(
                {
                    "name": p.name,
                    "project_id": p.project_id,
                    "plan": p.plan,
                    "limit": period.limit,
                    "usage": plane.accepted(p),
                    "period_start": period.start.isoformat(),
                    "period_end": period.end.isoformat(),
                    "created_at": p.created_at.isoformat(),
                }
            )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No projects yet. Create one: turret projects create NAME --plan trial")
        return
    table = [
        [
            r["name"], r["project_id"], r["plan"], f"{r['limit']:,}", f"{r['usage']:,}",
            f"{100 * r['usage'] / r['limit']:.1f}%" if r["limit"] else "-",
            r["period_end"][:10], r["created_at"][:10],
        ]
        for r in rows
    ]
    headers = ["NAME", "ID", "PLAN", "LIMIT", "USED", "USED%", "RESETS", "CREATED"]
    click.echo(_table(headers, table, right={3, 4, 5}))


@projects.command("rotate-key")
@click.argument("name")
@click.option("--keep-old", is_flag=True,
              help="Keep the project's current keys working (rotate without downtime).")
def rotate_key(name: str, keep_old: bool) -> None:
    """Issue a new API key for project NAME (printed alone on the last line); old keys are revoked."""
    with control_plane() as plane:
        project = plane.get_project(name)
        key = plane.rotate_key(project.project_id, keep_old=keep_old)
        if keep_old:
            click.echo(
                f"New key for {project.name!r}; its old keys still work (revoke them with revoke-key)."
            )
        else:
            click.echo(
                f"New key for {project.name!r}; its old keys are revoked "
                f"(running servers stop taking them within {plane.key_cache_seconds:g} s)."
            )
        click.echo(key)


@projects.command("revoke-key")
@click.argument("prefix")
def revoke_key(prefix: str) -> None:
    """Revoke the API key whose display prefix (e.g. trt_AbCd1234, see `keys`) or full value is PREFIX."""
    with control_plane() as plane:
        plane.revoke_key(prefix)
        click.echo(
            f"Revoked key {prefix[:12]}. Running servers stop taking it within {plane.key_cache_seconds:g} s."
        )


@projects.command("keys")
@click.argument("name")
def keys(name: str) -> None:
    """The API keys of project NAME (prefixes only: keys are stored hashed)."""
    with control_plane() as plane:
        project = plane.get_project(name)
        listed = plane.list_keys(project.project_id)
    rows = [
        [
            k["prefix"],
            _when(k["created_at"]),
            "revoked " + _when(k["revoked_at"]) if k["revoked_at"] else "active",
        ]
        for k in listed
    ]
    click.echo(f"Keys of {project.name!r} ({project.project_id}):")
    click.echo(_table(["PREFIX", "CREATED", "STATUS"], rows))

