"""The error of every operator action (CLI, console, registration): a request the operator can
fix, shown without a traceback. Its own module so that the admin helpers can raise it without
importing each other."""

from __future__ import annotations


class AdminError(ValueError):
    """A request an operator can fix (bad option, duplicate name); shown without a traceback."""
