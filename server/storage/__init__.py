"""Persistence: the only package that knows SQL. Everything else calls its repository functions."""

from .db import Database

__all__ = ["Database"]
