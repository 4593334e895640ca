"""WSGI entry point for gunicorn: ``gunicorn -k gevent 'server.wsgi:app'`` (settings from CIBA_*)."""

from . import create_app

app = create_app()
# Deliveries left from before a restart, or decided by another process, go out from here too.
app.extensions["ciba"].outbox.start()
