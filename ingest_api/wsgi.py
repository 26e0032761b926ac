"""WSGI entry point for a WSGI server of your own. gunicorn with Turret's configuration serves the app
behind its asyncio front instead: ``gunicorn -c python:turret.gunicorn_conf
'ingest_api.asgi:create_asgi_app()'`` (``turret serve`` does that for you)."""

from ingest_api import create_app

app = create_app()
