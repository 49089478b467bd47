"""
The shape of the package, checked: the public names are exactly those
documented, each layer imports only what its ``__init__`` says it may, no
module imports a cycle, and no module or class outgrows the limits of
``docs/architecture.rst`` without a reason given there.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

import octtwisted
from octtwisted._core import logs

ROOT = Path(octtwisted.__file__).parent
DOCS = Path(__file__).resolve().parent.parent / "docs"

#: The public modules and their exports. A change here is a change of the
#: public API: say so in the docs.
PUBLIC = {
    "octtwisted": ["CustomTimer", "Transaction", "timed"],
    "octtwisted.fasthttp": [
        "CertificateError",
        "ClientClosed",
        "ConnectError",
        "ConnectionLost",
        "Cookie",
        "CookieJar",
        "FastHTTPClient",
        "FastResponse",
        "FastSession",
        "HTTPError",
        "ProtocolError",
        "ResponseTimeout",
        "TLSError",
        "TooManyRedirects",
    ],
    "octtwisted.testing": [
        "FakeHQ",
        "FakeOrderSource",
        "InMemoryTurret",
        "RecordingSink",
        "StubFastHTTP",
        "make_turret",
    ],
}

#: Which layers each layer may import (besides itself).
MAY_IMPORT = {
    "_core": set(),
    "_stats": {"_core"},
    "_scripts": {"_core"},
    "_http": {"_core"},
    "_hq": {"_core"},
    "_firing": {"_core", "_scripts", "_stats", "_http"},
    "_edge": {"_core", "_scripts", "_stats", "_http", "_hq", "_firing"},
}

#: Modules allowed over MAX_LINES, with the reason docs/architecture.rst gives.
LONG_MODULES = {"octtwisted._http.fast.connection"}

#: Classes allowed over MAX_ATTRIBUTES, with the reason docs/architecture.rst gives.
WIDE_CLASSES = {
    "octtwisted._http.fast.connection._Connection",
    "octtwisted._stats.timeline.Timeline",
}

MAX_LINES = 420
MAX_ATTRIBUTES = 16


def _modules() -> list[tuple[str, Path]]:
    found = []
    for info in pkgutil.walk_packages([str(ROOT)], prefix="octtwisted."):
        spec = importlib.util.find_spec(info.name)
        assert spec is not None and spec.origin is not None
        found.append((info.name, Path(spec.origin)))
    return found


def _imports(path: Path) -> set[str]:
    """
    The octtwisted modules a file imports, at any depth (function-level
    imports included).
    """
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("octtwisted"):
            names.add(node.module)
            for alias in node.names:
                names.add(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("octtwisted"))
    return names


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in MAY_IMPORT else None


class PublicSurfaceTests(SynchronousTestCase):
    def test_exports_pinned(self) -> None:
        """
        Each public module's ``__all__`` is exactly the pinned list, and
        every name in it exists.
        """
        for name, exports in PUBLIC.items():
            module = importlib.import_module(name)
            self.assertEqual(sorted(module.__all__), sorted(exports), name)
            for export in exports:
                self.assertTrue(hasattr(module, export), f"{name}.{export}")

    def test_everything_else_private(self) -> None:
        """
        Every other module or package is private: its name (or a package
        above it) starts with an underscore.
        """
        public = set(PUBLIC)
        for name, _ in _modules():
            if name in public or name.startswith("octtwisted.conformance"):
                continue
            parts = name.split(".")[1:]
            self.assertTrue(any(p.startswith("_") for p in parts), f"{name} is neither public nor private")

    def test_layer_docstrings(self) -> None:
        """
        Each layer's ``__init__`` says what it owns and what it may import.
        """
        for layer in MAY_IMPORT:
            module = importlib.import_module(f"octtwisted.{layer}")
            self.assertIn("May import", module.__doc__ or "", layer)

    def test_log_namespaces_documented(self) -> None:
        """
        Every log namespace the turret uses is one of the documented ones:
        the docs' log samples name only namespaces of ``_core.logs``.
        """
        shown = set()
        for page in DOCS.glob("*.rst"):
            shown.update(re.findall(r"\[(octtwisted\.[\w.]+)#\w+\]", page.read_text()))
        self.assertTrue(shown)
        self.assertLessEqual(shown, set(logs.ALL))
        for path in ROOT.rglob("*.py"):
            self.assertNotIn("Logger()", path.read_text(), f"{path}: use _core.logs")

    def test_classes_log_under_their_namespace(self) -> None:
        """
        A class's logger, read from the class or an instance, logs under
        the documented namespace, not under the module the class lives in.
        """
        from octtwisted._edge.standalone import StandaloneRun
        from octtwisted._firing.lifecycle import Lifecycle
        from octtwisted._firing.turret import TurretService
        from octtwisted._hq.link import HQLink
        from octtwisted._stats.progress import ProgressReporter

        expected = {
            TurretService: logs.TURRET,
            Lifecycle: logs.LIFECYCLE,
            HQLink: logs.HQ_LINK,
            ProgressReporter: logs.PROGRESS,
            StandaloneRun: logs.STANDALONE,
        }
        for cls, namespace in expected.items():
            self.assertEqual(cls.log.namespace, namespace, cls)
        lifecycle = Lifecycle()
        bound = lifecycle.log
        self.assertEqual(bound.namespace, logs.LIFECYCLE)
        self.assertIs(bound.source, lifecycle)


class LayerTests(SynchronousTestCase):
    def test_layers_import_only_what_they_may(self) -> None:
        """
        No module imports a layer its layer may not import (which also
        rules out cycles between layers).
        """
        for name, path in _modules():
            layer = _layer(name)
            if layer is None:
                continue
            for imported in _imports(path):
                other = _layer(imported)
                if other is None or other == layer:
                    continue
                self.assertIn(other, MAY_IMPORT[layer], f"{name} imports {imported}")

    def test_no_import_cycles(self) -> None:
        """
        The module import graph (module-level imports) has no cycle.
        """
        graph: dict[str, set[str]] = {}
        modules = dict(_modules())
        for name, path in modules.items():
            tree = ast.parse(path.read_text())
            deps = set()
            for node in tree.body:
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("octtwisted"):
                    for alias in node.names:
                        full = f"{node.module}.{alias.name}"
                        deps.add(full if full in modules else node.module)
                elif isinstance(node, ast.Import):
                    deps.update(a.name for a in node.names if a.name in modules)
            graph[name] = {d for d in deps if d in modules and d != name}
        state: dict[str, int] = {}

        def visit(node: str, path: list[str]) -> None:
            state[node] = 1
            for dep in graph[node]:
                if state.get(dep) == 1:
                    self.fail("import cycle: " + " -> ".join(path + [node, dep]))
                if dep not in state:
                    visit(dep, path + [node])
            state[node] = 2

        for node in graph:
            if node not in state:
                visit(node, [])


class SizeTests(SynchronousTestCase):
    def test_modules_small(self) -> None:
        """
        No module is over MAX_LINES lines, but those listed (with their
        reason in docs/architecture.rst).
        """
        too_long = {}
        for name, path in _modules():
            lines = len(path.read_text().splitlines())
            if name not in LONG_MODULES and lines > MAX_LINES:
                too_long[name] = lines
        self.assertEqual(too_long, {})
        documented = (DOCS / "architecture.rst").read_text()
        for name in LONG_MODULES | WIDE_CLASSES:
            self.assertIn(name, documented)
        for name in LONG_MODULES:
            path = next(path for module, path in _modules() if module == name)
            self.assertGreater(len(path.read_text().splitlines()), MAX_LINES, f"{name}: no longer an exception")

    def test_classes_small(self) -> None:
        """
        No class sets more than MAX_ATTRIBUTES attributes on ``self``.
        """
        too_big = {}
        for name, path in _modules():
            tree = ast.parse(path.read_text())
            for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
                attributes = set()
                for node in ast.walk(cls):
                    targets = []
                    if isinstance(node, ast.Assign):
                        targets = node.targets
                    elif isinstance(node, ast.AnnAssign):
                        targets = [node.target]
                    for target in targets:
                        for t in ast.walk(target):
                            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                                attributes.add(t.attr)
                if len(attributes) > MAX_ATTRIBUTES and f"{name}.{cls.name}" not in WIDE_CLASSES:
                    too_big[f"{name}.{cls.name}"] = len(attributes)
        self.assertEqual(too_big, {})
