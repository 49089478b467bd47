"""
The turret: obeys the HQ's orders and fires its cannons.

:class:`TurretService` keeps the lifecycle and the orders; everything that
lives for one run is a run (a :class:`~octtwisted._firing.run.Run`, or
with ``--processes`` a :class:`~octtwisted._firing.fleetrun.FleetRun`), which its
:class:`~octtwisted._firing.runkeeper.RunKeeper` makes, stops and closes;
the ways the turret ends are :class:`~octtwisted._firing.leaving.Leaving`'s.
It knows nothing of ZeroMQ: orders come from an
:class:`~octtwisted._core.interfaces.OrderSource`, status and results go
to a :class:`~octtwisted._core.interfaces.ResultSink`.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from octtwisted._core import logs, messages
from octtwisted._core.clocks import Clocks
from octtwisted._core.config import TurretConfig
from octtwisted._core.interfaces import OrderSource, ResultSink
from octtwisted._core.messages import Order
from octtwisted._firing.hqwatch import HQLossWatch
from octtwisted._firing.leaving import Leaving
from octtwisted._firing.lifecycle import FINAL_STATES, Lifecycle, State
from octtwisted._firing.runkeeper import FiringRun, MakeRun, RunKeeper
from octtwisted._firing.status import StatusPublisher
from octtwisted._stats.summary import Summary


class TurretService(Service):
    """
    :param make_run: makes each run (see
        :func:`~octtwisted._firing.runkeeper.local_runs`: cannons firing
        in this process; or a fleet of worker processes').
    :param exit: ends the process with an exit status (after ``kill``, or
        an internal error).
    """

    log = logs.logger(logs.TURRET)

    #: Log each run's summary as a table (a standalone run prints it instead).
    summary_table_in_log = True

    def __init__(
        self,
        *,
        config: TurretConfig,
        uuid: str,
        make_run: MakeRun,
        orders: OrderSource | None,
        sink: ResultSink,
        clocks: Clocks,
        exit: Callable[[int], None],
    ) -> None:
        self.config = config
        self.uuid = uuid
        self._orders = orders
        self._sink = sink
        self._runs = RunKeeper(make_run, on_crash=self.abort)
        self.lifecycle = Lifecycle(self._state_changed)
        self.context: dict[str, Any] = {}
        self._status = StatusPublisher(clocks.reactor, sink, config, uuid, self.lifecycle)
        self._hq_watch = HQLossWatch(
            clocks.reactor, config.hq_lost_timeout, self._firing, self._hq_gone
        )
        self._leaving = Leaving(
            lifecycle=self.lifecycle,
            runs=self._runs,
            sink=sink,
            linger=config.linger,
            close_run=self._close_run,
            exit=exit,
        )

    # Queries

    @property
    def state(self) -> State:
        return self.lifecycle.state

    @property
    def run(self) -> FiringRun | None:
        """The run under way (firing or stopping), if any."""
        return self._runs.current

    @property
    def last_summary(self) -> Summary | None:
        """The summary of the last run, once it has stopped."""
        return self._runs.last_summary

    @property
    def cannons_started(self) -> int:
        return self.run.cannons_started if self.run is not None else 0

    @property
    def results(self) -> int:
        """Results made since the process started."""
        return self._runs.results

    @property
    def errors(self) -> int:
        """Error results made since the process started."""
        return self._runs.errors

    def _firing(self) -> bool:
        return self.state is State.RUNNING

    # Service

    def startService(self) -> None:
        super().startService()
        for warning in self.config.warnings:
            # Not "warning": Twisted's legacy observers (trial's among
            # them) take an event with that key for a Python warning.
            self.log.warn("{config_warning}", config_warning=warning)
        if self._orders is not None:
            self._orders.listen(self.handle_order)
        self._sink.on_connected(self._connected)
        self._sink.on_disconnected(self._hq_watch.lost)
        self.lifecycle.move(State.READY)
        self.log.info(
            "turret {name} ({uuid}) ready: {cannons} cannons, rampup {rampup}s, "
            "script {script}",
            name=self.config.name,
            uuid=self.uuid,
            cannons=self.config.cannons,
            rampup=self.config.rampup,
            script=self.config.script,
        )

    def stopService(self) -> Deferred[None]:
        """
        Stop firing (bounded by the stop timeout), send the final status and
        flush queued results (bounded by the linger).
        """
        super().stopService()
        return self._leaving.shut_down()

    def _connected(self) -> None:
        self._hq_watch.back()
        self._status.connected()

    def _hq_gone(self) -> None:
        self.log.warn(
            "the HQ has been away for {timeout}s: stopping the run",
            timeout=self.config.hq_lost_timeout,
        )
        self.cease_fire()

    # Orders

    def handle_order(self, order: Order) -> None:
        """
        Obey one order. An error here is the turret's own: it aborts.
        """
        try:
            self._obey(order)
        except Exception:
            self.abort(Failure())

    def _obey(self, order: Order) -> None:
        command = order.command
        if command == messages.STATUS_REQUEST:
            self._status.requested()
        elif command == messages.SET_TRANSACTION_CONTEXT:
            self.context.update(order.msg)
            self.log.info("transaction context updated: {keys}", keys=sorted(order.msg))
        elif command == messages.START:
            if self.state is State.STOPPING:
                self._start_after_stop()
            else:
                self._obey_if(State.READY, "start", self.start_firing)
        elif command == messages.STOP:
            if self.state is State.RESTARTING:
                self.lifecycle.move(State.STOPPING)  # the pending start is off
            else:
                self._obey_if(State.RUNNING, "stop", self.cease_fire)
        elif command == messages.KILL:
            if self.lifecycle.can_move(State.KILLING):
                self.kill()
            else:
                self.log.info("kill ignored: turret is {state}", state=self.state.value)

    def _obey_if(self, state: State, command: str, obey: Callable[[], object]) -> None:
        if self.state is state:
            obey()
        else:
            self.log.info(
                "{command} ignored: turret is {state}", command=command, state=self.state.value
            )

    # Firing and stopping

    def start_firing(self) -> None:
        """
        Go to RUNNING and start a run.
        """
        self.lifecycle.move(State.RUNNING)
        self._sink.run_started()
        self._runs.start(dict(self.context))

    def cease_fire(self) -> Deferred[None]:
        """
        The ``stop`` order: end the run, then be READY again (and fire
        again at once if a ``start`` came meanwhile).
        """
        self.lifecycle.move(State.STOPPING)
        d = self._runs.stop()
        d.addCallback(lambda _: self._back_to_ready())
        d.addErrback(self.abort)
        return d

    def _start_after_stop(self) -> None:
        """
        A ``start`` while the last run stops: a new HQ is there (the real
        HQ publishes its only ``start`` once a turret has answered, and the
        STOPPING turret answers ``Running``). The next run starts as soon
        as this stop ends; what the ending run still makes is discarded,
        not sent to the new HQ.
        """
        self.lifecycle.move(State.RESTARTING)
        self.log.info(
            "start received while stopping: the next run starts as soon as the "
            "stop ends; the ending run's remaining results are discarded"
        )
        if self.run is not None:
            self.run.supersede()

    def _back_to_ready(self) -> None:
        if self.state not in (State.STOPPING, State.RESTARTING):
            return  # killed or shut down meanwhile: that path closes the run
        self._sink.run_ended()
        self._close_run()
        if self.state is State.RESTARTING:
            self.start_firing()
        else:
            self.lifecycle.move(State.READY)

    def kill(self) -> Deferred[None]:
        """
        The ``kill`` order: stop, report ``Killed``, flush, exit 0.
        """
        return self._leaving.kill()

    def abort(self, failure: Failure) -> None:
        """
        The turret itself failed: send ``Aborted``, stop, exit non-zero.
        """
        self._leaving.abort(failure)

    def _close_run(self) -> None:
        self._runs.close(as_table=self.summary_table_in_log)

    def _state_changed(self, old: State, new: State) -> None:
        self._status.state_changed(new)
        if new in FINAL_STATES:
            self.log.info(
                "turret {state}: {results} results, {errors} errors",
                state=new.value,
                results=self.results,
                errors=self.errors,
            )
