"""The OpenAPI description (server/openapi/, served at /openapi.json) against the code: every
Flask route and method is described, and nothing described is missing (issue 13)."""

from __future__ import annotations

import re

import pytest

from server import create_app
from server.config import Settings

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def routes(app) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        found |= {(path, m) for m in rule.methods - IGNORED_METHODS}
    return found


def described(document: dict) -> set[tuple[str, str]]:
    methods = {"get", "post", "put", "patch", "delete"}
    return {(path, m.upper()) for path, item in document["paths"].items()
            for m in item if m in methods}


@pytest.mark.parametrize("token", ["", "conformance-secret"], ids=["default", "testing-route"])
def test_every_route_is_described_and_every_description_is_a_route(tmp_path, token):
    app = create_app(Settings(instance_path=str(tmp_path / "i"), issuer="http://op.test",
                              automated_approval_token=token))
    r = app.test_client().get("/openapi.json")
    assert r.status_code == 200
    document = r.get_json()
    assert document["openapi"].startswith("3.1")
    assert document["servers"] == [{"url": "http://op.test"}]
    assert described(document) - routes(app) == set(), "described but not served"
    assert routes(app) - described(document) == set(), "served but not described"


def test_the_description_is_valid_openapi(http):
    import schemathesis

    schema = schemathesis.openapi.from_dict(http.get("/openapi.json").get_json())
    operations = [op.ok() for op in schema.get_all_operations()]
    assert len(operations) == len(described(http.get("/openapi.json").get_json()))
