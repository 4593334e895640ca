"""One place wires the provider (server/wiring.py): every service is a typed attribute of the
Provider (None when off), every blueprint is registered by create_app, and the packages import
each other in one direction only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from server.config import Settings
from server.devices.housekeeping import Housekeeper
from server.devices.service import DeviceService
from server.notify.bus import InProcessBus
from server.notify.gotify_health import GotifyStatus
from server.notify.hub import Hub
from server.wiring import build_provider, create_app

SERVER = Path(__file__).resolve().parents[2] / "server"


@pytest.fixture
def settings(tmp_path):
    return Settings(instance_path=str(tmp_path / "instance"), issuer="http://op.test")


def test_build_provider_makes_every_service_and_gotify_is_none_when_off(settings):
    p = build_provider(settings)
    try:
        assert isinstance(p.devices, DeviceService)
        assert isinstance(p.bus, InProcessBus) and isinstance(p.hub, Hub)
        assert isinstance(p.housekeeper, Housekeeper)
        assert p.gotify is None and p.gotify_channel is None
        assert sorted(p.notifier.channels) == ["console", "websocket"]
        assert not hasattr(p, "web_extensions")
    finally:
        p.db.dispose()


def test_gotify_is_wired_when_configured(settings):
    settings.gotify_url = "http://gotify.invalid"
    p = build_provider(settings)
    try:
        assert isinstance(p.gotify, GotifyStatus) and p.gotify.url == "http://gotify.invalid"
        assert "gotify" in p.notifier.channels and "gotify" in p.devices.push_setups
    finally:
        p.db.dispose()


def test_create_app_registers_every_area(settings):
    app = create_app(settings)
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    for path in ("/.well-known/openid-configuration", "/bc-authorize", "/token", "/bc-cancel",
                 "/register", "/approve/<token>", "/account/", "/account/devices",
                 "/account/notifications", "/device/ws", "/device/enroll", "/admin/",
                 "/healthz", "/openapi.json"):
        assert any(r == path or r.startswith(path) for r in rules), path
    assert not any(r.startswith("/testing/") for r in rules)  # only with the approval token


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported server package, only under TYPE_CHECKING) for each import of ``path``."""
    module = list(path.relative_to(SERVER.parent).with_suffix("").parts)
    package = module[:-1] if module[-1] != "__init__" else module[:-1]
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, typing_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            typing = typing_only or (isinstance(child, ast.If)
                                     and "TYPE_CHECKING" in ast.unparse(child.test))
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package[:len(package) - (child.level - 1)]
                    targets = [base + (child.module.split(".") if child.module else [])
                               + ([] if child.module else [a.name]) for a in child.names]
                else:
                    targets = [(child.module or "").split(".")]
                found.extend((t[1], typing) for t in targets if len(t) > 1 and t[0] == "server")
            elif isinstance(child, ast.Import):
                found.extend((a.name.split(".")[1], typing) for a in child.names
                             if a.name.startswith("server."))
            visit(child, typing)

    visit(ast.parse(path.read_text()), False)
    return found


#: package -> server packages it must never import (DESIGN.md layout; no cycles between them).
FORBIDDEN = {
    "storage": {"oauth", "devices", "notify", "web", "provider", "wiring", "admin", "demo"},
    "notify": {"devices", "web", "oauth", "wiring", "demo"},
    "devices": {"web", "wiring", "demo"},
    "oauth": {"web", "devices", "wiring", "demo", "admin", "admin_clients", "admin_security",
              "admin_users", "registration"},
}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_import_downwards_only(package):
    wrong = []
    for path in sorted((SERVER / package).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for target, typing_only in _imports(path):
            if target in FORBIDDEN[package]:
                wrong.append(f"{path.relative_to(SERVER)} -> {target}")
            elif target == "provider" and not typing_only:
                wrong.append(f"{path.relative_to(SERVER)} -> provider (outside TYPE_CHECKING)")
    assert wrong == []
