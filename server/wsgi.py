"""WSGI entry point for gunicorn: ``gunicorn -k gevent 'server.wsgi:app'`` (settings from CIBA_*)."""

from . import create_app

app = create_app()
