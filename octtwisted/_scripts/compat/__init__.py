"""
Compatibility with scripts written for the reference oct-turrets package.

Classic scripts import ``oct_turrets.base.BaseTransaction`` and
``oct_turrets.tools.CustomTimer``. When the real package imports, it is used;
when it is missing, or fails to import (it does on Python 3.12 and later),
the small stand-ins in :mod:`octtwisted._scripts.compat.oct_turrets` take its place.
"""

from __future__ import annotations

import importlib
import sys

_NAMES = ("oct_turrets", "oct_turrets.base", "oct_turrets.tools")


def install_oct_turrets_fallback() -> bool:
    """
    Make ``import oct_turrets.base`` and ``oct_turrets.tools`` work.

    :return: True if the stand-ins were installed, False if the real
        package is used.
    """
    current = sys.modules.get("oct_turrets")
    if current is not None:
        return getattr(current, "__octtwisted_fallback__", False)
    try:
        for name in _NAMES:
            importlib.import_module(name)
        return False
    except Exception:
        for name in list(sys.modules):
            if name == "oct_turrets" or name.startswith("oct_turrets."):
                del sys.modules[name]
    for name in _NAMES:
        sys.modules[name] = importlib.import_module("octtwisted._scripts.compat." + name)
    return True
