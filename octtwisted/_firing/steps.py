"""
Where a transaction's steps (``setup``, ``run``, ``tear_down``) run.

The decision is :func:`octtwisted._scripts.loading.decide`'s; this module
carries it out, with the :class:`CannonFactory` it asks for. Every cannon
is a :class:`~octtwisted._firing.cannon.Cannon`; the factory gives it the
barrel for its script: a reactor script's steps run on the reactor thread
and may return a plain value, a Deferred or a coroutine (``async def``)
(:class:`ReactorCannonFactory`, :mod:`octtwisted._firing.on_reactor`); a
blocking script's cannons each own a thread
(:class:`ThreadedCannonFactory`, :mod:`octtwisted._firing.threaded`).
Either way the turret makes its cannons with ``make_cannon(...)``.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from octtwisted._core import logs
from octtwisted._core.clocks import Clocks
from octtwisted._firing.cannon import CannonSettings
from octtwisted._firing.nextturn import NextTurn
from octtwisted._firing.on_reactor import reactor_cannon
from octtwisted._firing.threaded import threaded_cannon
from octtwisted._firing.threads import CannonThread, Mailbox, Reactorish, Worker
from octtwisted._scripts.loading import Decision


class FiringCannon(Protocol):
    """
    What the turret needs of a cannon.
    """

    index: int

    @property
    def fired(self) -> int: ...

    @property
    def running(self) -> bool: ...

    @property
    def started(self) -> bool: ...

    @property
    def busy(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self) -> Deferred[None]: ...

    def cancel_in_flight(self, reason: str) -> None: ...


class CannonFactory(Protocol):
    """
    Makes the cannons of a script, with the barrel its steps need.
    """

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
        request_timers: bool = False,
    ) -> FiringCannon:
        """
        A cannon that fires the script's steps where they belong (the
        arguments are those of
        :class:`~octtwisted._firing.cannon.CannonSettings`).
        """


class ReactorCannonFactory:
    """
    Makes cannons whose steps run on the reactor thread. The cannons made
    for one reactor share one :class:`NextTurn`.
    """

    def __init__(self) -> None:
        self._next_turn: NextTurn | None = None

    def make_cannon(self, **kwargs: Any) -> FiringCannon:
        settings = CannonSettings(**kwargs)
        reactor = settings.clocks.reactor
        next_turn = self._next_turn
        if next_turn is None or next_turn.reactor is not reactor:
            next_turn = self._next_turn = NextTurn(reactor)
        return reactor_cannon(settings, next_turn)


class ThreadedCannonFactory(Service):
    """
    Makes the cannons of a blocking script: each gets a thread of its own
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
        self._warned_thread: object = None
        self._left_behind = 0
        #: cannon threads given up on since the process started
        self.left_behind = 0

    def make_cannon(self, **kwargs: Any) -> FiringCannon:
        settings = CannonSettings(**kwargs)
        make_transaction = settings.make_transaction
        return threaded_cannon(
            settings,
            self._new_worker(f"oct-cannon-{settings.index}"),
            self.mailbox,
            on_misuse=lambda text: self.misused(text, make_transaction),
            on_left_behind=self._gave_up,
            on_no_thread=lambda reason: self.no_thread(reason, make_transaction),
        )

    def no_thread(self, reason: str, run: object) -> None:
        """
        The system would not start a cannon's thread: logged once per run.
        """
        if self._warned_thread is run:
            return
        self._warned_thread = run
        self.log.error(
            "cannot start a thread for a blocking cannon ({reason}): the process's thread limit "
            "(ulimit -u, /proc/sys/kernel/threads-max, or memory for their stacks) is reached; "
            "those cannons report an error each second and try again. Lower cannons or raise "
            "the limit (logged once per run)",
            reason=reason,
        )

    def misused(self, text: str, run: object) -> None:
        """
        A step of the run whose cannons ``run`` makes was misused
        (``text``): logged once per run (every cannon of one run shares
        that run's make_transaction).
        """
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


def make_cannon_factory(decision: Decision, reactor: Any, parent: MultiService) -> CannonFactory:
    """
    The cannon factory ``decision`` asks for; its services go under
    ``parent``.
    """
    DecisionLog(decision).setServiceParent(parent)
    if not decision.blocking:
        return ReactorCannonFactory()
    factory = ThreadedCannonFactory(reactor)
    factory.setServiceParent(parent)
    return factory
