"""
Where a transaction's steps (``setup``, ``run``, ``tear_down``) run.

The decision is :func:`octtwisted._scripts.loading.decide`'s; this module
carries it out. A reactor script's steps run on the reactor thread and may
return a plain value, a Deferred or a coroutine (``async def``): its
cannons are :class:`~octtwisted._firing.cannon.Cannon`. A blocking
script's cannons each own a thread (:mod:`octtwisted._firing.threaded`).
Either way the turret makes its cannons with ``steps.make_cannon(...)``.
"""

from __future__ import annotations

from types import CoroutineType
from typing import Any, Callable, Protocol

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from octtwisted._core import logs
from octtwisted._core.clocks import Clocks
from octtwisted._firing.threaded import ThreadedCannon
from octtwisted._firing.threads import CannonThread, Mailbox, Reactorish, Worker
from octtwisted._scripts.loading import Decision


class FiringCannon(Protocol):
    """
    What the turret needs of a cannon.
    """

    index: int
    fired: int

    @property
    def running(self) -> bool: ...

    @property
    def started(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self) -> Deferred[None]: ...

    def cancel_in_flight(self, reason: str) -> None: ...


class StepCaller(Protocol):
    def make_cannon(
        self,
        *,
        index: int,
        turret_name: str,
        make_transaction: Callable[[], Any],
        clocks: Clocks,
        report: Callable[[Any], None],
        started_at: float,
        pacing: float = 0.0,
        transaction_timeout: float | None = None,
        on_crash: Callable[[Failure], None] | None = None,
        throttle: Callable[[], Deferred[None] | None] | None = None,
    ) -> FiringCannon:
        """
        A cannon that fires the script's steps where they belong.
        """


class ReactorStepCaller:
    """
    Calls steps on the reactor thread; coroutines become Deferreds.
    """

    def call(self, step: Callable[[], Any]) -> Any:
        result = step()
        if type(result) is CoroutineType:
            return Deferred.fromCoroutine(result)
        return result

    _next_turn: Any = None

    def make_cannon(self, **kwargs: Any) -> FiringCannon:
        from octtwisted._firing.cannon import Cannon
        from octtwisted._firing.nextturn import NextTurn

        # One NextTurn for every cannon on the same reactor.
        reactor = kwargs["clocks"].reactor
        if self._next_turn is None or self._next_turn.reactor is not reactor:
            self._next_turn = NextTurn(reactor)
        return Cannon(steps=self, next_turn=self._next_turn, **kwargs)


class ThreadedSteps(Service):
    """
    The steps of a blocking script: each cannon gets a thread of its own
    (made by ``new_worker``), and one :class:`Mailbox` brings every
    cannon's results to the reactor.

    A step that returns a Deferred or a coroutine is logged once per run;
    cannons given up on at the stop timeout are counted in the log.
    """

    def __init__(
        self,
        reactor: Reactorish,
        new_worker: Callable[[str], Worker] = CannonThread,
    ) -> None:
        # An instance's logger keeps its namespace (a class attribute would
        # not: Twisted's Logger renames itself after the class it is in).
        self.log = logs.logger(logs.CANNON)
        self._reactor = reactor
        self._new_worker = new_worker
        self.mailbox = Mailbox(reactor)
        self._warned_run: object = None
        self._left_behind = 0
        self._left_behind_logged = 0
        #: cannon threads given up on since the process started
        self.left_behind = 0

    def make_cannon(self, *, index: int, make_transaction: Callable[[], Any], **kwargs: Any) -> FiringCannon:
        return ThreadedCannon(
            index=index,
            make_transaction=make_transaction,
            worker=self._new_worker(f"oct-cannon-{index}"),
            mailbox=self.mailbox,
            on_misuse=lambda text: self._misused(text, make_transaction),
            on_left_behind=self._gave_up,
            **kwargs,
        )

    def _misused(self, text: str, run: object) -> None:
        # Every cannon of one run shares that run's make_transaction.
        if self._warned_run is run:
            return
        self._warned_run = run
        self.log.error("{error} (logged once per run)", error=text)

    def _gave_up(self) -> None:
        self.left_behind += 1
        if self._left_behind == 0:
            clock: Any = self._reactor
            clock.callLater(0, self._log_left_behind)
        self._left_behind += 1

    def _log_left_behind(self) -> None:
        count, self._left_behind = self._left_behind, 0
        self.log.warn(
            "left {count} cannon thread(s) behind: a step had not returned at "
            "the stop timeout ({total} since the turret started; they are "
            "daemon threads and end with the process)",
            count=count,
            total=self.left_behind,
        )


class DecisionLog(Service):
    """
    Logs, at start, where the script's steps run and why.
    """

    def __init__(self, decision: Decision) -> None:
        self.log = logs.logger(logs.TURRET)
        self.decision = decision

    def startService(self) -> None:
        super().startService()
        self.log.info(
            "{decision}",
            decision=self.decision.describe(),
            blocking=self.decision.blocking,
            reason=self.decision.reason,
        )


def make_step_caller(decision: Decision, reactor: Any, parent: MultiService) -> StepCaller:
    """
    The step caller ``decision`` asks for; its services go under ``parent``.
    """
    DecisionLog(decision).setServiceParent(parent)
    if not decision.blocking:
        return ReactorStepCaller()
    steps = ThreadedSteps(reactor)
    steps.setServiceParent(parent)
    return steps
