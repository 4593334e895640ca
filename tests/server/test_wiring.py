"""One place wires the provider (server/wiring.py): every service is a typed attribute of the
Provider (None when off), every blueprint is registered by create_app, the packages import each
other in one direction only, and no modules of server/ import each other in a circle (type-only
imports included)."""

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


def _module(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph(root: Path = SERVER) -> dict[str, set[str]]:
    """Each module under ``root`` -> the modules of ``root`` it imports: every import statement,
    at module level, inside a function or under ``TYPE_CHECKING`` (a type-only import still ties
    two modules together, for a reader and for a type checker)."""
    paths = {_module(path, root): path for path in sorted(root.rglob("*.py"))}

    def resolve(name: str) -> str | None:  # the module, or the package, that ``name`` is in
        while name and name not in paths:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = (node.module or "") if not node.level else ".".join(
                    package.split(".")[:len(package.split(".")) - node.level + 1]
                    + ([node.module] if node.module else []))
                # ``from package import module`` imports the module; ``from module import x``
                # the module itself.
                found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in paths else resolve(base)
                             for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(resolve(a.name) for a in node.names)
        graph[name] = {m for m in found if m is not None and m != name}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


def test_no_circle_between_modules_type_only_imports_included():
    """The provider is the composition root: it imports the services, and they state what they
    need of it as protocols (server/ports.py, oauth/policy.py, oauth/context.py) instead of
    naming it. Any circle, even through an annotation, fails here with its modules."""
    assert _circles(_import_graph()) == []


def test_a_type_only_circle_is_found(tmp_path):
    """The check above sees imports under TYPE_CHECKING and inside functions."""
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("")
    (root / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                               "    from .sub.b import B\n")
    (root / "sub" / "b.py").write_text("def f():\n    from .. import c\n")
    (root / "c.py").write_text("import pkg.a\n")
    (root / "d.py").write_text("from .sub import b\n")
    assert _circles(_import_graph(root)) == [["pkg.a", "pkg.c", "pkg.sub.b"]]


#: package -> server packages and modules it must never import, not even for annotations
#: (DESIGN.md layout). The services name ``ports.ProviderCore`` (or a protocol extending it),
#: never ``provider.Provider``, which imports them.
FORBIDDEN = {
    "storage": {"oauth", "devices", "notify", "web", "provider", "wiring", "admin", "demo",
                "ports"},
    "notify": {"devices", "web", "oauth", "provider", "wiring", "demo"},
    "devices": {"web", "provider", "wiring", "demo"},
    "oauth": {"web", "devices", "provider", "wiring", "demo", "admin", "admin_clients",
              "admin_security", "admin_users", "registration"},
}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_import_downwards_only(package):
    graph = _import_graph()
    wrong = sorted(f"{module} -> {target}" for module, targets in graph.items()
                   if module.startswith(f"server.{package}.") or module == f"server.{package}"
                   for target in targets
                   if target.count(".") and target.split(".")[1] in FORBIDDEN[package])
    assert wrong == []
