"""
Loading a test script and deciding where its steps run.

A script is a Python file that defines a class ``Transaction``. Where its
steps run is decided here, once, from what is certain about the script
(:func:`decide`, the first rule that applies wins):

1. the config key ``blocking`` (true: threads, false: the reactor);
2. a ``blocking`` attribute the script's own class (or a base class other
   than :class:`octtwisted.Transaction`) sets;
3. the reactor, for a subclass of :class:`octtwisted.Transaction`;
4. the reactor, when ``setup``, ``run`` or ``tear_down`` is ``async def``
   or an ``inlineCallbacks`` method;
5. the reactor, when the script's module imports ``twisted``, ``treq`` or
   ``octtwisted`` (it can only return Deferreds if it does);
6. otherwise threads, one per cannon: classic oct-turrets scripts and
   plain synchronous classes.

A wrong decision is never silent: a step in a thread that returns a
Deferred or a coroutine is an error result naming ``blocking = False``,
and the reactor watchdog names a step that blocks the reactor with the
advice ``blocking = True``.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import sys
from pathlib import Path

import attrs

from octtwisted._scripts.compat import install_oct_turrets_fallback


class ScriptError(Exception):
    """
    The script cannot be used; ``str()`` is one line for the user.
    """


def load_transaction_class(path: Path) -> type:
    """
    Import the script at ``path`` and return its ``Transaction`` class.

    The script's folder is put first on ``sys.path``, so it can import the
    files that come with it.

    :raise ScriptError: naming the script and what went wrong.
    """
    install_oct_turrets_fallback()
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    digest = hashlib.sha1(str(path).encode("utf-8")).hexdigest()[:12]
    module_name = f"octtwisted_script_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ScriptError(f"{path}: not a Python script")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        sys.modules.pop(module_name, None)
        raise ScriptError(f"{path}: syntax error at line {e.lineno}: {e.msg}")
    except BaseException as e:
        sys.modules.pop(module_name, None)
        raise ScriptError(
            f"{path}: script failed to import: {type(e).__name__}: {e}"
        )
    transaction = getattr(module, "Transaction", None)
    if transaction is None:
        raise ScriptError(f"{path}: script has no Transaction class")
    if not isinstance(transaction, type):
        raise ScriptError(
            f"{path}: Transaction is a {type(transaction).__name__}, not a class"
        )
    for step in ("run",):
        if not callable(getattr(transaction, step, None)):
            raise ScriptError(f"{path}: Transaction has no {step}() method")
    return transaction


#: Modules whose import makes a script a reactor script.
REACTOR_MODULES = frozenset({"twisted", "treq", "octtwisted"})

STEPS = ("setup", "run", "tear_down")


@attrs.frozen
class Decision:
    """
    Where a script's steps run, and why (one line for the log).
    """

    blocking: bool
    reason: str

    def describe(self) -> str:
        where = "in threads, one per cannon" if self.blocking else "on the reactor"
        return f"Transaction steps run {where}: {self.reason}"


def decide(transaction_class: type, configured: bool | None) -> Decision:
    """
    Where the steps of ``transaction_class`` run (the rule is in the module
    docstring); ``configured`` is the config key ``blocking``, or None.
    """
    from octtwisted._scripts.transaction import Transaction

    if configured is not None:
        return Decision(bool(configured), f'the config says "blocking": {str(bool(configured)).lower()}')
    for cls in transaction_class.__mro__:
        if "blocking" in cls.__dict__ and cls is not Transaction:
            value = bool(cls.__dict__["blocking"])
            return Decision(value, f"{cls.__name__}.blocking = {value}")
    if issubclass(transaction_class, Transaction):
        return Decision(False, "a subclass of octtwisted.Transaction")
    for name in STEPS:
        step = getattr(transaction_class, name, None)
        kind = _twisted_kind(step)
        if kind:
            return Decision(False, f"{name} is {kind}")
    imported = _reactor_imports(transaction_class)
    if imported:
        return Decision(False, f"its module imports {imported}")
    return Decision(
        True,
        "plain synchronous steps (no blocking attribute, no async def, "
        "no import of twisted, treq or octtwisted)",
    )


def is_blocking(transaction_class: type, configured: bool | None) -> bool:
    """
    Whether the script's steps run in threads (see :func:`decide`).
    """
    return decide(transaction_class, configured).blocking


def _twisted_kind(step: object) -> str:
    """
    ``"async def"`` or ``"an inlineCallbacks method"`` if ``step`` is one.
    """
    if step is None:
        return ""
    if inspect.iscoroutinefunction(step):
        return "async def"
    wrapped = getattr(step, "__wrapped__", None)
    if wrapped is not None and inspect.isgeneratorfunction(wrapped):
        return "an inlineCallbacks method"
    return ""


def _reactor_imports(transaction_class: type) -> str:
    """
    The first of :data:`REACTOR_MODULES` that the module defining
    ``transaction_class`` imports (anywhere in its source), or ``""``.
    """
    module = sys.modules.get(transaction_class.__module__)
    try:
        source = inspect.getsource(module) if module is not None else ""
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, ValueError):
        return ""
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            root = name.split(".")[0]
            if root in REACTOR_MODULES:
                return root
    return ""


def takes_no_arguments(transaction_class: type) -> bool:
    """
    Whether the class is made as ``Transaction()``, as in the oldest
    oct-turrets scripts, rather than ``Transaction(config, context)``.
    """
    try:
        signature = inspect.signature(transaction_class)
    except (TypeError, ValueError):
        return False
    try:
        signature.bind(None, None)
        return False
    except TypeError:
        pass
    try:
        signature.bind()
        return True
    except TypeError:
        return False
