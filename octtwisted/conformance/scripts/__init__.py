"""
The kit's default transaction scripts, for turrets that run Python
scripts in the oct-turrets style (a ``Transaction`` class built with
``Transaction(config, context)``, with ``setup``, ``run``, ``tear_down``
and ``custom_timers``).

- :data:`SUCCEEDS`: waits about 20 ms and succeeds. It names its custom
  timer after the transaction context key :data:`TIMER_KEY` (``wait``
  without it); the kit sets it to :data:`CONTEXT_TIMER`, which contains
  the word ``status``.
- :data:`FAILS`: waits about 20 ms and raises an exception whose text is
  :data:`FAILING_MESSAGE` (it contains the word ``status`` too).
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
SUCCEEDS: Path = HERE / "succeeds.py"
FAILS: Path = HERE / "fails.py"
TIMER_KEY = "conformance_timer"
CONTEXT_TIMER = "status_wait"
FAILING_MESSAGE = "conformance kit: this transaction fails on purpose (status 503)"

__all__ = ["SUCCEEDS", "FAILS", "TIMER_KEY", "CONTEXT_TIMER", "FAILING_MESSAGE"]
