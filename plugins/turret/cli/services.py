"""``turret up``, ``turret status``, ``turret down``: the whole product on one machine (``make up``).

The work is in :mod:`turret.services`; these commands validate options, print, and turn its errors into one
clear message with a non-zero exit status.
"""

from __future__ import annotations

from typing import NoReturn

import click

from turret.settings import Settings, SettingsError


class CommandError(click.ClickException):
    """A clear error; exit status 2 for bad input (like click's own usage errors), 1 for a failed action."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = code


def fail(message: str, code: int = 1) -> NoReturn:
    raise CommandError(message, code)


def load_settings() -> Settings:
    """The settings with absolute paths (the detached processes do not run in the caller's directory)."""
    from turret.services import absolute_settings

    try:
        return absolute_settings(Settings.from_env())
    except SettingsError as exc:
        fail(str(exc), code=2)


PORT = click.IntRange(1, 65535)


@click.command()
@click.option("--api-port", type=PORT, default=None, show_default="TURRET_PORT, 8000",
              help="Port of the ingest API (turret serve).")
@click.option("--airflow-port", type=PORT, default=8080, show_default=True,
              help="Port of Airflow's API server and UI.")
@click.option("--ui-port", type=PORT, default=None, show_default="TURRET_UI_PORT, 8050",
              help="Port of the dashboard (turret ui).")
@click.option("--host", default=None, show_default="TURRET_HOST, 127.0.0.1",
              help="Interface the servers bind to.")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Wait until the ingest API, the dashboard and Airflow answer before returning.")
@click.option("--timeout", "wait_seconds", type=click.FloatRange(1, 3600), default=240, show_default=True,
              help="Seconds --wait waits before giving up (and stopping what it started).")
def up(api_port: int | None, airflow_port: int, ui_port: int | None, host: str | None, wait: bool,
       wait_seconds: float) -> None:
    """Start Turret on this machine: the ingest API, the dashboard and Airflow (API server, scheduler, DAG
    processor, triggerer), each detached with its log in TURRET_HOME/logs. With TURRET_EXECUTOR=celery
    also a redis-server broker and TURRET_CELERY_WORKERS Celery workers. Stop with `make down`."""
    from turret import services
    from turret.ui.auth import resolve_password

    settings = load_settings()
    host = (host or settings.host).strip()
    if not host or any(c.isspace() for c in host):
        fail(f"--host {host!r} is not a host name or address", code=2)
    api_port = api_port or settings.port
    ui_port = ui_port or settings.ui_port
    # Resolved here, before the dashboard starts, so that a generated password is printed by `up` itself.
    password, password_path, generated = resolve_password(settings)
    try:
        endpoints = services.start(settings, api_port=api_port, airflow_port=airflow_port, host=host,
                                   wait=wait, wait_seconds=wait_seconds, echo=click.echo, ui_port=ui_port)
    except services.ServiceError as exc:
        fail(str(exc))
    layout = services.Layout(settings.home)
    if wait:
        try:
            dag_state = services.ensure_unpaused(settings, endpoints["airflow_url"])
        except services.ServiceError as exc:
            dag_state = f"unknown ({exc})"
        click.echo("")
        click.echo("Turret is up.")
        click.echo(f"  Ingest API:   {endpoints['api_url']}  (POST /track with an API key from "
                   "`turret projects create`)")
        click.echo(f"  Airflow UI:   {endpoints['airflow_url']}  user {services.ADMIN_USER!r}, password in "
                   f"{services.password_file(settings)}")
        click.echo(f"  DAG {services.HOURLY_DAG}: {dag_state}")
    else:
        click.echo("")
        click.echo("Turret is starting (not waiting); `turret status` shows when both APIs answer.")
        click.echo(f"  Ingest API:   {endpoints['api_url']}")
        click.echo(f"  Airflow UI:   {endpoints['airflow_url']}  user {services.ADMIN_USER!r}, password in "
                   f"{services.password_file(settings)} (written when the API server starts)")
    if generated:
        sign_in = f"generated password (shown once; kept in {password_path}): {password}"
    elif password_path is not None:
        sign_in = f"password in {password_path}"
    else:
        sign_in = "password TURRET_UI_PASSWORD"
    click.echo(f"  Dashboard:    {endpoints['ui_url']}  {sign_in}")
    if settings.executor == "celery":
        click.echo(f"  Executor:     Celery, {settings.celery_workers} worker(s) on queues "
                   f"default,{settings.warehouse_queue}; broker {settings.celery_broker}")
    else:
        click.echo("  Executor:     LocalExecutor (tasks run under the scheduler)")
    click.echo(f"  Logs:         {layout.log_dir}")
    click.echo("  Stop with:    make down   (or `turret down`)")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(as_json: bool) -> None:
    """Each component (running or stopped, pid, uptime) and the health of the ingest API and Airflow.

    Exit status 0 when every component runs, 3 when some or all are stopped.
    """
    import json

    from turret import services

    settings = load_settings()
    states, health = services.describe(settings)
    if as_json:
        click.echo(json.dumps({
            "components": [{"name": s.name, "running": s.running, "pid": s.pid if s.running else None,
                            "uptime_s": round(s.uptime_s, 1) if s.uptime_s is not None else None}
                           for s in states],
            "health": {k: {"ok": ok, "detail": detail} for k, (ok, detail) in health.items()},
        }, indent=2))
    else:
        width = max(len(s.name) for s in states)
        for s in states:
            if s.running:
                uptime = services.format_uptime(s.uptime_s)
                click.echo(f"{s.name.ljust(width)}  running  pid {s.pid:<8} up {uptime}")
            else:
                note = "  (stale pid file)" if s.stale else ""
                click.echo(f"{s.name.ljust(width)}  stopped{note}")
        for name, (ok, detail) in health.items():
            click.echo(f"{name}: {'ok' if ok else 'DOWN'} ({detail})")
        if not any(s.running for s in states):
            click.echo("Turret is not running; start it with `make up`.")
    if not all(s.running for s in states):
        raise SystemExit(3)


@click.command()
@click.option("--timeout", type=click.FloatRange(1, 600), default=30, show_default=True,
              help="Seconds to wait for each process group after the stop signal before SIGKILL.")
def down(timeout: float) -> None:
    """Stop everything `turret up` started, seal open landing segments, remove the pid files.

    Safe to repeat: when nothing runs it says so and exits 0.
    """
    from turret import services
    from turret.landing import LandingError

    settings = load_settings()
    layout = services.Layout(settings.home)
    was_running = [s for s in services.read_states(layout) if s.running]
    try:
        report = services.stop(settings, timeout=timeout, echo=click.echo)
    except LandingError as exc:
        fail(f"Turret stopped, but sealing the landing segments failed: {exc}")
    except OSError as exc:
        fail(f"cannot stop Turret cleanly: {exc}")
    if not was_running and not report.stragglers:
        click.echo(f"Turret is not running in {layout.home}; nothing to stop.")
    if report.stale:
        click.echo("Removed stale pid files: " + ", ".join(report.stale))
    if report.stopped:
        click.echo("Stopped: " + ", ".join(report.stopped))
    if report.killed:
        click.echo("Killed after the timeout: " + ", ".join(report.killed))
    if report.stragglers:
        click.echo(f"Stopped {len(report.stragglers)} leftover process(es) outside the process groups:")
        for pid, cmd in report.stragglers:
            click.echo(f"  pid {pid}: {cmd[:120]}")
    if report.sealed:
        click.echo(f"Sealed {len(report.sealed)} landing segment(s) left open.")
    leftover = services.leftover_processes(layout.home)
    if leftover:
        fail("these processes could not be stopped: " + ", ".join(f"pid {p}" for p, _ in leftover))
