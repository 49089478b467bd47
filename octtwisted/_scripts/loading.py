"""
Loading a test script and deciding how its steps are called.

A script is a Python file that defines a class ``Transaction``. Whether its
steps are *blocking* (run in a thread pool) or *non-blocking* (run on the
reactor) is decided explicitly, never guessed from the code:

1. the config key ``blocking`` (true or false), if set; else
2. the class attribute ``Transaction.blocking``, if it has one
   (:class:`octtwisted.Transaction` sets it to False); else
3. blocking, the safe choice for classic oct-turrets scripts.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

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


def is_blocking(transaction_class: type, configured: bool | None) -> bool:
    """
    Whether the script's steps must run in a thread pool (see the module
    docstring for the rule).
    """
    if configured is not None:
        return configured
    declared: Any = getattr(transaction_class, "blocking", True)
    return bool(declared)


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
