"""WSGI entry point for a plain gunicorn command line:
``gunicorn -c python:turret.gunicorn_conf ingest_api.wsgi:app`` (``turret serve`` needs no such module)."""

from ingest_api import create_app

app = create_app()
