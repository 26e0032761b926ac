"""``turret ui``: the dashboard (topics, journeys, settings) under gunicorn, on 127.0.0.1:8050 by default."""

from __future__ import annotations

import click

from turret.cli.serve import fail, load_settings

UI_THREADS = 8


def make_server(bind: str, workers: int, threads: int):
    """A gunicorn application that builds ``turret.ui.create_app()`` in each worker."""
    from gunicorn.app.base import BaseApplication

    options = {"bind": bind, "workers": workers, "threads": threads, "worker_class": "gthread",
               "timeout": 60, "graceful_timeout": 10, "accesslog": None, "errorlog": "-", "loglevel": "info",
               "proc_name": "turret-ui", "control_socket_disable": True}

    class DashboardServer(BaseApplication):
        def load_config(self) -> None:
            known = set(self.cfg.settings)
            for name, value in options.items():
                if name in known:
                    self.cfg.set(name, value)

        def load(self):
            from turret.ui import create_app

            return create_app()

    return DashboardServer(prog="turret ui")


@click.command()
@click.option("--host", default=None, help="Interface to bind (default TURRET_HOST, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Port (default TURRET_UI_PORT, 8050).")
@click.option("--workers", type=click.IntRange(1, 16), default=1, show_default=True,
              help="Worker processes (each keeps its own connection to the published marts).")
def ui(host: str | None, port: int | None, workers: int) -> None:
    """Serve the dashboard: topics, journeys, topic map, metadata settings, projects and keys.

    It reads the published marts only (never the warehouse). Sign in with TURRET_UI_PASSWORD, or with the
    password generated and printed on the first start when that is unset.
    """
    from turret.ui.auth import resolve_password, resolve_secret_key

    settings = load_settings()
    host = (host or settings.host).strip()
    if not host or any(c.isspace() for c in host):
        fail(f"--host {host!r} is not a host name or address")
    port = port or settings.ui_port
    try:
        import turret.ui  # noqa: F401 - fail here, clearly, rather than in every worker
    except ImportError as exc:
        fail(f"the dashboard cannot be imported: {exc}", code=1)
    password, path, created = resolve_password(settings)
    resolve_secret_key(settings)  # created once here, not raced by the workers
    url = f"http://{host}:{port}"
    click.echo(f"Starting the Turret dashboard on {url} (published marts: {settings.published})")
    if created:
        click.echo(f"Generated a sign-in password (shown once; kept in {path}): {password}")
    elif path is not None:
        click.echo(f"Sign in with the password in {path} (or set TURRET_UI_PASSWORD).")
    else:
        click.echo("Sign in with TURRET_UI_PASSWORD.")
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo("Note: the session cookie is Secure; from other machines, serve it behind HTTPS.")
    make_server(f"{host}:{port}", workers, UI_THREADS).run()
