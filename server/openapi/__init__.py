"""The OpenAPI 3.1 description of the provider's HTTP API, served at ``GET /openapi.json``.

One YAML file per area (NN-area.yaml), merged in name order: ``paths`` and each section of
``components`` are combined (a name defined twice is an error). A path marked
``x-ciba-requires-setting: NAME`` is served only when that setting is set (e.g. the conformance
testing route). tests/server/test_openapi.py checks the result against the Flask routes.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


@lru_cache(maxsize=1)
def _merged() -> dict:
    document: dict = {}
    for path in sorted(HERE.glob("*.yaml")):
        part = yaml.safe_load(path.read_text()) or {}
        for key, value in part.items():
            if key == "paths" or key == "components":
                target = document.setdefault(key, {})
                for name, item in (value or {}).items():
                    if key == "paths":
                        if name in target:
                            raise ValueError(f"{path.name}: path {name} described twice")
                        target[name] = item
                    else:
                        section = target.setdefault(name, {})
                        clash = set(section) & set(item)
                        if clash:
                            raise ValueError(f"{path.name}: components.{name} {clash} twice")
                        section.update(item)
            else:
                document[key] = value
    return document


def document(issuer: str, settings=None) -> dict:
    """The description for one provider: its issuer as the server, optional routes filtered."""
    doc = copy.deepcopy(_merged())
    doc["servers"] = [{"url": issuer}]
    for path, item in list(doc["paths"].items()):
        needed = item.pop("x-ciba-requires-setting", None)
        if needed and not (settings is not None and getattr(settings, needed, None)):
            del doc["paths"][path]
    return doc
