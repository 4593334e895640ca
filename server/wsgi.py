"""WSGI entry point for production: ``gunicorn -c python:server.gunicorn_conf 'server.wsgi:app'``
(settings from CIBA_*; docs/deployment.md). Refuses to start on settings that would misbehave
quietly (server/startup.py); under gunicorn that stops the whole server with the message.

A process that holds device WebSockets needs one open file per socket: the soft limit is raised
to the hard one here (docs/deployment.md says how to raise the hard limit).
"""

import gc

from . import create_app
from .config import Settings
from .devserver import raise_open_file_limit
from .logs import configure
from .startup import StartupError, check

_settings = Settings.from_env()
configure(_settings.log_format)
try:
    check(_settings)
except StartupError as exc:
    try:
        from gunicorn.errors import AppImportError
    except ImportError:  # another WSGI server
        raise exc from None
    # gunicorn prints an AppImportError's message alone and halts instead of respawning.
    raise AppImportError(f"error: {exc}") from None

raise_open_file_limit()
app = create_app(_settings)
# The app's own objects (modules, routes, settings, keys) live as long as the process: out of
# the cyclic collector's reach, so its rare full collections do not walk them under load.
gc.collect()
gc.freeze()
# Deliveries left from before a restart, or decided by another process, go out from here too.
app.extensions["ciba"].outbox.start()
