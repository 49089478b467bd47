"""
The documentation builds with Sphinx, warnings as errors (``make docs``),
the README is a true quick start, and the architecture page a true map
(every name it shows exists).
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
from pathlib import Path

from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SynchronousTestCase, TestCase

ROOT = Path(__file__).resolve().parent.parent


class DocsTests(TestCase):
    timeout = 120

    async def test_sphinx_builds_without_warnings(self) -> None:
        """
        ``sphinx-build -W`` succeeds on docs/.
        """
        out_dir = Path(self.mktemp()).absolute()
        out, err, code = await getProcessOutputAndValue(
            sys.executable,
            ["-m", "sphinx", "-W", "-q", "-b", "html", str(ROOT / "docs"), str(out_dir)],
        )
        self.assertEqual(code, 0, (out + err).decode())

    def test_readme_commands(self) -> None:
        """
        The README starts with ``make demo`` and names ``make test``, and
        every docs page it links to exists.
        """
        readme = (ROOT / "README.rst").read_text()
        self.assertIn("make demo", readme)
        self.assertIn("make test", readme)
        self.assertLess(readme.index("make demo"), readme.index("make test"))
        for page in re.findall(r"docs/(\w+)\.rst", readme):
            self.assertTrue((ROOT / "docs" / f"{page}.rst").exists(), page)

    def test_in_memory_example_runs(self) -> None:
        """
        The in-memory turret test shown in docs/testing.rst runs and passes
        as it is written there.
        """
        import unittest

        page = (ROOT / "docs" / "testing.rst").read_text()
        blocks = re.findall(r"\.\. code-block:: python\n\n((?:   .*\n|\n)+)", page)
        example = next(b for b in blocks if "make_turret" in b)
        code = "\n".join(line[3:] for line in example.splitlines())
        namespace: dict[str, object] = {}
        exec(compile(code, "docs/testing.rst", "exec"), namespace)
        case = namespace["InMemoryTurret"]("test_one_cannon")  # type: ignore[operator]
        result = unittest.TestResult()
        case.run(result)
        self.assertEqual((result.errors, result.failures), ([], []))
        self.assertEqual(result.testsRun, 1)


#: A name in the text: identifiers joined by dots, maybe followed by its
#: arguments (``Run.stop()``, ``hold(i)``).
_NAME = re.compile(r"(?P<name>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(?:\(.*\))?")

#: In the diagrams, the words taken for names: dotted ones (``Run.stop``,
#: ``zmq.Again``) and CamelCase ones (``HQLink``, ``_OrderSocket``), not
#: after a slash or a dot (a file's path) nor before a dot and a file's
#: extension.
_DIAGRAM_NAME = re.compile(
    r"(?<![\w/.])(?:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+|_*[A-Z]\w*[a-z]\w*)(?![\w/]|\.(?:py|rst)\b)"
)

#: Names from outside the package that the diagrams show, and where they are.
_OUTSIDE = {"Deferred": "twisted.internet.defer", "LoopingCall": "twisted.internet.task"}

#: Capitalized words of the diagrams' text that are not names.
_PROSE = {"ZeroMQ"}


class _PackageNames:
    """
    Every name the package defines, read from its source: its modules;
    each module's top-level names (classes, functions, assignments, and
    what it imports); each class's members (methods, class attributes and
    fields, attributes set on ``self``), with those of its bases in the
    package; and the parameters of its functions (callbacks are known by
    their parameter's name: ``bring_in``). A member a class inherits from
    outside the package (``Options.parseOptions``, from Twisted) is
    looked up on the class itself.
    """

    def __init__(self) -> None:
        self.modules: dict[str, set[str]] = {}
        self.defined: set[str] = set()
        self.members: dict[str, set[str]] = {}
        self.parameters: set[str] = set()
        #: the modules that define a class of each name
        self.homes: dict[str, set[str]] = {}
        bases: dict[str, set[str]] = {}
        package = ROOT / "octtwisted"
        for path in sorted(package.rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names = self.modules.setdefault(module, set())
            for node in tree.body:
                names.update(_bound(node))
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    names.update((a.asname or a.name).split(".")[0] for a in node.names)
                else:
                    self.defined.update(_bound(node))
            for function in ast.walk(tree):
                if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    arguments = function.args
                    self.parameters.update(
                        a.arg for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs
                    )
            for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
                self.defined.add(cls.name)
                self.homes.setdefault(cls.name, set()).add(module)
                members = self.members.setdefault(cls.name, set())
                bases.setdefault(cls.name, set()).update(
                    b.id for b in cls.bases if isinstance(b, ast.Name)
                )
                for node in cls.body:
                    members.update(_bound(node))
                for node in ast.walk(cls):
                    targets = node.targets if isinstance(node, ast.Assign) else (
                        [node.target] if isinstance(node, ast.AnnAssign) else []
                    )
                    members.update(
                        t.attr for t in targets
                        if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
                        and t.value.id == "self"
                    )
        for cls in list(self.members):
            seen, todo = set(), [cls]
            while todo:
                base = todo.pop()
                if base in seen or base not in self.members:
                    continue
                seen.add(base)
                self.members[cls] |= self.members[base]
                todo.extend(bases.get(base, ()))
        self.any_member = set().union(*self.members.values())

    def module(self, dotted: str) -> str | None:
        """
        The module named ``dotted``: in full, or by its last parts
        (``_core.interfaces``, ``wire``).
        """
        if dotted in self.modules:
            return dotted
        found = [m for m in self.modules if m.endswith("." + dotted)]
        return found[0] if len(found) == 1 else None

    def resolves(self, dotted: str) -> bool:
        parts = dotted.split(".")
        for k in range(len(parts), 0, -1):
            module = self.module(".".join(parts[:k]))
            if module is None:
                continue
            rest = parts[k:]
            return not rest or (rest[0] in self.modules[module] and self._in_class(rest[0], rest[1:]))
        if parts[0] in self.defined:
            return self._in_class(parts[0], parts[1:])
        if len(parts) == 1 and (parts[0] in self.any_member or parts[0] in self.parameters):
            return True
        return _outside(dotted)

    def _in_class(self, name: str, rest: list[str]) -> bool:
        for member in rest:
            if member not in self.members.get(name, set()) and not self._inherited(name, member):
                return False
            name = member
        return True

    def _inherited(self, name: str, member: str) -> bool:
        for module in self.homes.get(name, ()):
            cls = getattr(importlib.import_module(module), name, None)
            if cls is not None and hasattr(cls, member):
                return True
        return False


def _bound(node: ast.stmt) -> set[str]:
    """
    The names a top-level statement (of a module or a class) binds.
    """
    if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
        return {node.name}
    if isinstance(node, ast.Assign):
        return {t.id for target in node.targets for t in ast.walk(target) if isinstance(t, ast.Name)}
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return {node.target.id}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    if isinstance(node, (ast.If, ast.Try)):
        return {name for child in node.body for name in _bound(child)}
    return set()


def _outside(dotted: str) -> bool:
    """
    A name of another library the turret uses (``zmq.Again``), or one
    of :data:`_OUTSIDE`: it is importable and has the attributes.
    """
    first, *rest = dotted.split(".")
    if first in _OUTSIDE:
        rest, first = [first, *rest], _OUTSIDE[first]
    try:
        target: object = importlib.import_module(first)
    except ImportError:
        return False
    for part in rest:
        if not hasattr(target, part):
            return False
        target = getattr(target, part)
    return True


def _inline_literals(text: str) -> list[str]:
    return re.findall(r"``(.+?)``", text)


def _diagrams(text: str) -> list[str]:
    """
    The text of the page's ``.. code-block:: text`` diagrams.
    """
    return re.findall(r"\.\. code-block:: text\n\n((?:   .*\n|\n)+)", text)


class ArchitecturePageTests(SynchronousTestCase):
    """
    ``docs/architecture.rst`` is a true map of the package.
    """

    def test_names_exist(self) -> None:
        """
        Every name the page shows exists in the package.

        The names checked: each double-backquoted literal that is a name
        (identifiers joined by dots, maybe followed by its arguments, as in
        ``Run.stop()`` or ``hold(i)``), and in the text diagrams each
        dotted word and each CamelCase word. A name resolves as a module
        (in full or by its last parts: ``octtwisted._hq.link``,
        ``_core.interfaces``), a module's name (``wire.decode_order``),
        a class or function or constant of the package followed by its
        members (``HQLink.queue``, ``Run._deliver``), a lone member of a
        class (``make_cannon``, ``on_result``) or parameter of a function
        (``bring_in``), or a name of a library the turret uses
        (``zmq.Again``; ``LoopingCall`` and ``Deferred``, from Twisted).

        Not names, so skipped: literals with a space (commands, such as
        ``make bench``), options (starting with ``-``), the HQ's orders
        (``stop``, ``kill``: the words of ``messages.COMMANDS``), the
        capitalized words of the diagrams' text that are not names
        (``ZeroMQ``), and anything else that is not identifiers and dots
        (quoted strings).
        A literal with a slash is a file: it must exist, under the
        repository or under ``octtwisted/``.
        """
        from octtwisted._core.messages import COMMANDS

        text = (ROOT / "docs" / "architecture.rst").read_text(encoding="utf-8")
        names = _PackageNames()
        missing = []
        for literal in _inline_literals(text):
            if "/" in literal:
                if not ((ROOT / literal).exists() or (ROOT / "octtwisted" / literal).exists()):
                    missing.append(literal)
                continue
            match = _NAME.fullmatch(literal)
            if " " in literal or match is None or literal in COMMANDS:
                continue
            if not names.resolves(match["name"]):
                missing.append(literal)
        for diagram in _diagrams(text):
            missing += [
                n for n in _DIAGRAM_NAME.findall(diagram) if n not in _PROSE and not names.resolves(n)
            ]
        self.assertEqual(sorted(set(missing)), [])
