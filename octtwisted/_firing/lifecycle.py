"""
The turret's lifecycle as an explicit state machine.

States, the transitions allowed between them, and the status word the HQ is
shown for each. :meth:`Lifecycle.move` is the one place that changes state.
"""

from __future__ import annotations

import enum
from typing import Callable

from octtwisted._core import logs, messages


class State(enum.Enum):
    INITIALIZED = "initialized"
    #: loaded, announcing itself, waiting for ``start``
    READY = "ready"
    #: cannons are firing
    RUNNING = "running"
    #: a ``stop`` order: cannons stopping, then READY again
    STOPPING = "stopping"
    #: a ``start`` came while STOPPING: cannons stopping, then RUNNING again
    RESTARTING = "restarting"
    #: a ``kill`` order: cannons stopping, then KILLED
    KILLING = "killing"
    #: the process is shutting down (signal or end of a standalone run)
    SHUTTING_DOWN = "shutting down"
    #: final: killed by the HQ
    KILLED = "killed"
    #: final: shut down
    STOPPED = "stopped"
    #: final: died of its own error
    ABORTED = "aborted"


#: The status word sent to the HQ in each state.
STATUS_WORDS: dict[State, str] = {
    State.INITIALIZED: "Initialized",
    State.READY: messages.READY,
    State.RUNNING: messages.RUNNING,
    State.STOPPING: messages.RUNNING,
    State.RESTARTING: messages.RUNNING,
    State.KILLING: messages.RUNNING,
    State.SHUTTING_DOWN: messages.RUNNING,
    State.KILLED: messages.KILLED,
    State.STOPPED: messages.KILLED,
    State.ABORTED: messages.ABORTED,
}

FINAL_STATES = frozenset({State.KILLED, State.STOPPED, State.ABORTED})

_LEAVING = {State.SHUTTING_DOWN, State.ABORTED}

ALLOWED: dict[State, frozenset[State]] = {
    State.INITIALIZED: frozenset({State.READY} | _LEAVING),
    State.READY: frozenset({State.RUNNING, State.KILLING} | _LEAVING),
    State.RUNNING: frozenset({State.STOPPING, State.KILLING} | _LEAVING),
    State.STOPPING: frozenset({State.READY, State.RESTARTING, State.KILLING} | _LEAVING),
    State.RESTARTING: frozenset({State.RUNNING, State.STOPPING, State.KILLING} | _LEAVING),
    State.KILLING: frozenset({State.KILLED, State.ABORTED}),
    State.SHUTTING_DOWN: frozenset({State.STOPPED, State.ABORTED}),
    State.KILLED: frozenset(),
    State.STOPPED: frozenset(),
    State.ABORTED: frozenset(),
}


class IllegalTransition(RuntimeError):
    """
    A transition the state machine does not allow: a bug in the turret.
    """


class Lifecycle:
    """
    Holds the current :class:`State` and tells a listener about each change.
    """

    log = logs.logger(logs.LIFECYCLE)

    def __init__(self, on_change: Callable[[State, State], None] | None = None) -> None:
        self.state = State.INITIALIZED
        self._on_change = on_change

    @property
    def status_word(self) -> str:
        return STATUS_WORDS[self.state]

    def can_move(self, new: State) -> bool:
        return new in ALLOWED[self.state]

    def move(self, new: State) -> None:
        """
        Change state to ``new``.

        :raise IllegalTransition: if ``new`` is not allowed from here.
        """
        old = self.state
        if new not in ALLOWED[old]:
            raise IllegalTransition(f"{old.value} -> {new.value}")
        self.state = new
        self.log.info("turret state: {old} -> {new}", old=old.value, new=new.value)
        if self._on_change is not None:
            self._on_change(old, new)
