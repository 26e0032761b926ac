"""``turret serve``: the ingest API under gunicorn (asyncio workers in several processes, each running the
app on a pool of threads behind a front that reads whole requests first: ``ingest_api.asgi``)."""

from __future__ import annotations

import os
from typing import NoReturn

import click

from turret.settings import Settings, SettingsError


class CommandError(click.ClickException):
    """A clear, one-line error; exit status 2 for bad input (like click's own usage errors)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = code


def fail(message: str, code: int = 2) -> NoReturn:
    raise CommandError(message, code)


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        fail(str(exc))


def build_options(host: str, port: int, workers: int) -> dict[str, object]:
    """gunicorn settings: those of :mod:`turret.gunicorn_conf`, with bind/workers from the command. (The
    app's threads are its own, ``TURRET_THREADS``: gunicorn's asgi worker has none.)"""
    from gunicorn.config import KNOWN_SETTINGS

    import turret.gunicorn_conf as conf

    known = {s.name for s in KNOWN_SETTINGS}
    options = {name: value for name, value in vars(conf).items() if name in known}
    options.update(bind=f"{host}:{port}", workers=workers)
    return options


def make_server(options: dict[str, object]):
    """A gunicorn application that builds ``ingest_api.create_app()`` in each worker."""
    from gunicorn.app.base import BaseApplication

    class TurretServer(BaseApplication):
        def load_config(self) -> None:
            for name, value in options.items():
                self.cfg.set(name, value)

        def load(self):
            from ingest_api.asgi import create_asgi_app

            return create_asgi_app()

    return TurretServer(prog="turret serve")


@click.command()
@click.option("--host", default=None, help="Interface to bind (default TURRET_HOST, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default TURRET_PORT, 8000).")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Worker processes (TURRET_WORKERS).")
@click.option("--threads", type=click.IntRange(1, 256), default=None,
              help="Threads per worker (TURRET_THREADS).")
def serve(host: str | None, port: int | None, workers: int | None, threads: int | None) -> None:
    """Run the ingest API (POST /track, /track/batch, PUT /api/analytics/events) until SIGTERM or Ctrl-C.

    Events are acknowledged only once fsynced to the landing store; SIGTERM finishes in-flight requests,
    seals the landing segments and returns unused quota.
    """
    settings = load_settings()
    host = host or settings.host
    if not host.strip() or any(c.isspace() for c in host):
        fail(f"--host {host!r} is not a host name or address")
    try:
        import ingest_api  # noqa: F401 - fail here, clearly, rather than in every worker
    except ImportError as exc:
        fail(f"the ingest API package cannot be imported: {exc}", code=1)
    threads = threads or settings.threads
    os.environ["TURRET_THREADS"] = str(threads)  # read by each worker's app (ingest_api.asgi)
    options = build_options(host, port or settings.port, workers or settings.workers)
    click.echo(
        f"Starting Turret ingest API on http://{options['bind']} "
        f"({options['workers']} workers x {threads} threads); "
        f"landing store {settings.landing_root}"
    )
    make_server(options).run()
