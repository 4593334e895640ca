"""WSGI entry point for gunicorn: ``gunicorn -k gevent 'server.wsgi:app'`` (settings from CIBA_*).

A process that holds device WebSockets needs one open file per socket: the soft limit is raised
to the hard one here (docs/deployment.md says how to raise the hard limit).
"""

from . import create_app
from .devserver import raise_open_file_limit

raise_open_file_limit()
app = create_app()
