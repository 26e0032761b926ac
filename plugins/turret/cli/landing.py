"""``turret landing``: look at the landing store, seal it, and check it for torn or malformed lines."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import NoReturn

import click

from turret.settings import Settings, SettingsError


def fail(message: str, code: int = 2) -> NoReturn:
    exc = click.ClickException(message)
    exc.exit_code = code
    raise exc


def _root():
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        fail(str(exc))
    return settings.landing_root


@click.group()
def landing() -> None:
    """The landing store: hourly JSON Lines segments written by the ingest API."""


@landing.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(as_json: bool) -> None:
    """Open and sealed segments per hour, with line counts; open segments with their writer."""
    from turret.landing import describe_segments

    root = _root()
    infos = describe_segments(root) if root.exists() else []
    if as_json:
        click.echo(json.dumps([
            {
                "path": str(i.path), "hour": i.hour.isoformat() if i.hour else None, "sealed": i.sealed,
                "host": i.host, "pid": i.pid, "writer_alive": i.writer_alive,
                "bytes": i.bytes, "lines": i.lines,
            }
            for i in infos
        ], indent=2))
        return
    click.echo(f"Landing store: {root}")
    if not infos:
        click.echo("No segments yet.")
        return
    per_hour: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for i in infos:
        key = i.hour.strftime("%Y-%m-%d %H:00") if i.hour else "?"
        row = per_hour[key]
        row[0 if i.sealed else 1] += 1
        row[2] += i.lines
        row[3] += i.bytes
    click.echo(f"{'HOUR (UTC)':<17} {'SEALED':>6} {'OPEN':>5} {'LINES':>10} {'BYTES':>12}")
    for hour in sorted(per_hour):
        sealed, open_, lines, size = per_hour[hour]
        click.echo(f"{hour:<17} {sealed:>6} {open_:>5} {lines:>10,} {size:>12,}")
    open_infos = [i for i in infos if not i.sealed]
    total_lines = sum(i.lines for i in infos)
    click.echo(f"Total: {len(infos) - len(open_infos)} sealed, {len(open_infos)} open, {total_lines:,} lines")
    for i in open_infos:
        state = {
            True: "writer alive", False: "writer DEAD (orphan: `turret landing seal`)", None: "other host"
        }
        click.echo(f"  open: {i.path.relative_to(root)}  pid {i.pid}, {state[i.writer_alive]}")


@landing.command()
@click.option("--timeout", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Seconds to wait for live writers to seal.")
def seal(timeout: float) -> None:
    """Seal every open segment: ask live writers (they answer within ~1 s) and seal those of dead ones."""
    from turret.landing import LandingError, request_seal, utc_now, wait_for_seal

    root = _root()
    if not root.exists():
        click.echo(f"Landing store {root} does not exist yet: nothing to seal.")
        return
    asked_at = utc_now()
    try:
        sealed = request_seal(root, timeout=timeout, at=asked_at)
    except (LandingError, OSError) as exc:
        fail(f"cannot seal the landing store {root}: {exc}", code=1)
    click.echo(f"Sealed {len(sealed)} segment(s) in {root}.")
    still_open = wait_for_seal(root, asked_at, timeout=0)
    if still_open:
        for path in still_open:
            click.echo(f"  still open: {path.relative_to(root)}", err=True)
        fail(f"{len(still_open)} segment(s) of live writers did not seal within {timeout:g} s", code=1)


@landing.command()
@click.option("--include-open", is_flag=True, help="Also read open segments (a write may be in progress).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="Show at most this many bad lines.")
def check(include_open: bool, as_json: bool, limit: int) -> None:
    """Read every sealed segment and report torn or malformed lines (exit status 1 if any)."""
    from turret.landing import iter_open_segments, iter_sealed_segments, read_segment

    root = _root()
    paths = list(iter_sealed_segments(root)) if root.exists() else []
    if include_open and root.exists():
        paths += list(iter_open_segments(root))
    good = 0
    bad = []
    for path in paths:
        try:
            for line in read_segment(path):
                if line.error is None:
                    good += 1
                else:
                    bad.append({"segment": str(path), "line_no": line.line_no, "reason": line.error,
                                "raw": line.raw[:200]})
        except FileNotFoundError:
            continue  # an open segment sealed while we read: it is read again next time
    if as_json:
        click.echo(json.dumps({"segments": len(paths), "valid_lines": good, "bad_lines": bad}, indent=2))
    else:
        click.echo(f"Checked {len(paths)} segment(s) in {root}: {good:,} valid line(s), {len(bad)} bad.")
        for b in bad[:limit]:
            rel = b["segment"].removeprefix(str(root)).lstrip("/")
            click.echo(f"  {rel}:{b['line_no']}: {b['reason']}")
        if len(bad) > limit:
            click.echo(f"  ... and {len(bad) - limit} more (--limit, --json)")
    if bad:
        raise SystemExit(1)
