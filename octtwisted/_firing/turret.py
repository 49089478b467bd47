"""
The turret: obeys the HQ's orders and fires its cannons.

:class:`TurretService` is the core of the process. It knows nothing of
ZeroMQ: orders come from an :class:`~octtwisted._core.interfaces.OrderSource`,
status and results go to a :class:`~octtwisted._core.interfaces.ResultSink`.
"""

from __future__ import annotations

import gc
from typing import Any, Callable

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from octtwisted._core import messages
from octtwisted._firing.cannon import Cannon
from octtwisted._core.clocks import Clocks
from octtwisted._core.config import TurretConfig
from octtwisted._core.interfaces import OrderSource, ResultSink
from octtwisted._firing.lifecycle import FINAL_STATES, Lifecycle, State
from octtwisted._core.messages import Order, Result, StatusReport
from octtwisted._firing.schedule import RampupScheduler
from octtwisted._scripts.loading import takes_no_arguments
from octtwisted._firing.steps import StepCaller
from octtwisted._http.shared import SharedHTTPClient
from octtwisted._scripts.transaction import Transaction
from octtwisted._stats.outputs import RunOutputs
from octtwisted._stats.progress import ProgressReporter
from octtwisted._stats.summary import RunStats, Summary
from octtwisted._core import logs

#: Exit status of a turret that died of its own error (EX_SOFTWARE).
EXIT_ABORTED = 70

#: Seconds to wait for cancelled transactions to end after the stop timeout.
CANCEL_GRACE = 1.0

#: While firing: seconds between full garbage collections, and the third
#: gc threshold that keeps Python from making its own (see _calm_gc).
FULL_GC_INTERVAL = 60.0
NO_AUTOMATIC_FULL_GC = 1_000_000_000

#: Least time between two answers to ``status_request``, in seconds.
STATUS_ANSWER_INTERVAL = 0.5


class TurretService(Service):
    """
    :param transaction_class: the script's ``Transaction``; called as
        ``Transaction(config, context)`` once per cannon.
    :param steps: calls the transaction steps (reactor or thread pool).
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
        transaction_class: Callable[..., Any],
        steps: StepCaller,
        orders: OrderSource | None,
        sink: ResultSink,
        clocks: Clocks,
        exit: Callable[[int], None],
        outputs: RunOutputs | None = None,
    ) -> None:
        self.config = config
        self.uuid = uuid
        self._transaction_class = transaction_class
        self._steps = steps
        self._orders = orders
        self._sink = sink
        self._clocks = clocks
        self._exit = exit
        self._outputs = outputs
        self._on_result: Callable[[Result], None] | None = None
        self.lifecycle = Lifecycle(self._state_changed)
        self.context: dict[str, Any] = {}
        self._cannons: list[Cannon] = []
        self._rampup: RampupScheduler | None = None
        self._heartbeat = LoopingCall(self.send_status)
        self._heartbeat.clock = clocks.reactor
        self._stopping: Deferred[None] | None = None
        self._run_stats: RunStats | None = None
        self._progress: ProgressReporter | None = None
        self._run_began = 0.0
        self._http: SharedHTTPClient | None = None
        self._holding: Deferred[None] | None = None
        self._status_answer: IDelayedCall | None = None
        self._last_answer = float("-inf")
        self._cannons_stopping: Deferred[None] | None = None
        self._hq_lost: IDelayedCall | None = None
        self._gc_frozen = False
        self._gc_thresholds: tuple[int, int, int] | None = None
        self._full_gc: LoopingCall | None = None
        self._make_transaction: Callable[[], Any] | None = None
        #: the summary of the last run, once it has stopped
        self.last_summary: Summary | None = None
        #: results made since the process started
        self.results = 0
        self.errors = 0

    # Queries

    @property
    def state(self) -> State:
        return self.lifecycle.state

    @property
    def cannons_started(self) -> int:
        return self._rampup.started if self._rampup is not None else 0

    def status_report(self) -> StatusReport:
        return StatusReport(
            turret=self.config.name,
            status=self.lifecycle.status_word,
            uuid=self.uuid,
            rampup=self.config.rampup,
            script=self.config.script,
            cannons=self.config.cannons,
        )

    def send_status(self) -> None:
        self._sink.send_status(self.status_report())

    # Service

    def startService(self) -> None:
        super().startService()
        for warning in self.config.warnings:
            self.log.warn("{warning}", warning=warning)
        if self._orders is not None:
            self._orders.listen(self.handle_order)
        self._sink.on_connected(self._connected)
        self._sink.on_disconnected(self._disconnected)
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
        if self.state in FINAL_STATES:
            return self._stopping or defer.succeed(None)
        self.lifecycle.move(State.SHUTTING_DOWN)
        d = self._stop_cannons()
        d.addCallback(lambda _: self.lifecycle.move(State.STOPPED))
        d.addCallback(lambda _: self._sink.flush(self.config.linger))
        d.addErrback(self._report_failure)
        self._stopping = d
        return d

    def _answer_status_request(self) -> None:
        """
        Answer a ``status_request``: at once, unless an answer went out less
        than STATUS_ANSWER_INTERVAL ago; then one answer at the end of that
        interval covers every request made meanwhile. (The real HQ asks
        again as soon as it receives anything, so answering every request
        at once would make the two trade messages as fast as they can.)
        """
        if self._status_answer is not None:
            return
        clock = self._clocks.reactor
        wait = self._last_answer + STATUS_ANSWER_INTERVAL - clock.seconds()
        if wait <= 0:
            self._send_status_answer()
        else:
            self._status_answer = clock.callLater(wait, self._send_status_answer)

    def _send_status_answer(self) -> None:
        self._status_answer = None
        self._last_answer = self._clocks.reactor.seconds()
        if self.state not in FINAL_STATES:
            self.send_status()

    def _connected(self) -> None:
        """
        The HQ link (re)connected: say who we are at once.
        """
        if self._hq_lost is not None:
            if self._hq_lost.active():
                self._hq_lost.cancel()
            self._hq_lost = None
        if self.state not in FINAL_STATES:
            self.send_status()

    def _disconnected(self) -> None:
        """
        The HQ went away. If it does not come back within
        ``hq_lost_timeout`` while the turret fires, the run is over: stop
        as on a ``stop`` order, and wait for an HQ again.
        """
        timeout = self.config.hq_lost_timeout
        if self.state is State.RUNNING and timeout > 0 and self._hq_lost is None:
            self._hq_lost = self._clocks.reactor.callLater(timeout, self._hq_gone)

    def _hq_gone(self) -> None:
        self._hq_lost = None
        if self.state is State.RUNNING:
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
            self._answer_status_request()
        elif command == messages.SET_TRANSACTION_CONTEXT:
            self.context.update(order.msg)
            self.log.info(
                "transaction context updated: {keys}", keys=sorted(order.msg)
            )
        elif command == messages.START:
            if self.state is State.READY:
                self.start_firing()
            else:
                self.log.info("start ignored: turret is {state}", state=self.state.value)
        elif command == messages.STOP:
            if self.state is State.RUNNING:
                self.cease_fire()
            else:
                self.log.info("stop ignored: turret is {state}", state=self.state.value)
        elif command == messages.KILL:
            if self.lifecycle.can_move(State.KILLING):
                self.kill()
            else:
                self.log.info("kill ignored: turret is {state}", state=self.state.value)

    # Firing

    def start_firing(self) -> None:
        """
        Go to RUNNING and bring the cannons in over the rampup.
        """
        self.lifecycle.move(State.RUNNING)
        self._sink.run_started()
        config = self.config
        context = dict(self.context)
        transaction_class = self._transaction_class
        http = self._http = SharedHTTPClient(self._clocks.reactor, config.cannons)
        no_arguments = takes_no_arguments(transaction_class)

        def make_transaction() -> Any:
            if no_arguments:
                transaction = transaction_class()
            else:
                transaction = transaction_class(config.raw, dict(context))
            if isinstance(transaction, Transaction):
                transaction._octtwisted_http = http
            return transaction

        self._make_transaction = make_transaction
        self._cannons = []
        self._rampup = RampupScheduler(
            self._clocks.reactor,
            config.cannons,
            self._bring_in,
            config.rampup,
            on_done=self._all_cannons_in,
        )
        self._run_stats = RunStats()
        if self._outputs is not None:
            self._outputs.run_started(self._run_stats, self._active_cannons)
            self._on_result = self._outputs.on_result
        self._progress = ProgressReporter(
            self._clocks.reactor,
            config.progress_interval,
            config.cannons,
            self._active_cannons,
            self._run_stats.take_interval,
        )
        self._progress.start()
        self.log.info(
            "open fire: {cannons} cannons over {rampup}s",
            cannons=config.cannons,
            rampup=config.rampup,
        )
        self._calm_gc()
        # The rampup's times, and every result's elapsed, count from here.
        self._run_began = self._clocks.monotonic()
        self._rampup.start()

    def _bring_in(self, index: int) -> None:
        """
        Make cannon ``index`` and start it (called by the rampup): a cannon
        is only made when its time comes.
        """
        config = self.config
        cannon = Cannon(
            index=index,
            turret_name=config.name,
            make_transaction=self._make_transaction,
            steps=self._steps,
            clocks=self._clocks,
            report=self._deliver,
            started_at=self._run_began,
            pacing=config.pacing,
            transaction_timeout=config.transaction_timeout,
            on_crash=self.abort,
            throttle=self._hold_if_queue_full,
        )
        self._cannons.append(cannon)
        cannon.start()

    def cease_fire(self) -> Deferred[None]:
        """
        The ``stop`` order: stop every cannon, then be READY again.
        """
        self.lifecycle.move(State.STOPPING)
        d = self._stop_cannons()
        d.addCallback(lambda _: self._back_to_ready())
        d.addErrback(self.abort)
        return d

    def _back_to_ready(self) -> None:
        if self.state is State.STOPPING:
            self._sink.run_ended()
            self.lifecycle.move(State.READY)

    def kill(self) -> Deferred[None]:
        """
        The ``kill`` order: stop, report ``Killed``, flush, exit 0.
        """
        self.lifecycle.move(State.KILLING)
        d = self._stop_cannons()
        d.addCallback(lambda _: self.lifecycle.move(State.KILLED))
        d.addCallback(lambda _: self._sink.flush(self.config.linger))
        d.addCallback(lambda _: self._exit(0))
        d.addErrback(self.abort)
        self._stopping = d
        return d

    def abort(self, failure: Failure) -> None:
        """
        The turret itself failed: send ``Aborted``, stop, exit non-zero.
        """
        self.log.failure("turret error; aborting", failure=failure)
        if self.state in FINAL_STATES and self.state is not State.STOPPED:
            return
        if self.state is State.STOPPED:
            self._exit(EXIT_ABORTED)
            return
        self.lifecycle.move(State.ABORTED)
        d = self._stop_cannons()
        d.addCallback(lambda _: self._sink.flush(self.config.linger))
        d.addErrback(self._report_failure)
        d.addBoth(lambda _: self._exit(EXIT_ABORTED))
        self._stopping = d

    def _report_failure(self, failure: Failure) -> None:
        self.log.failure("error while stopping", failure=failure)

    def _hold_if_queue_full(self) -> Deferred[None] | None:
        """
        Backpressure: while ``max_pending_results`` results wait to be
        sent, cannons hold back until the queue is down to half.
        """
        limit = self.config.max_pending_results
        if self._sink.pending() < limit:
            return None
        if self._holding is None:
            self.log.warn(
                "{pending} results wait for the HQ: cannons paused until "
                "it catches up",
                pending=self._sink.pending(),
            )
            self._holding = self._sink.wait_for_room(max(1, limit // 2))
            self._holding.addCallback(self._resume)
        hold: Deferred[None] = Deferred()
        self._holding.addCallback(lambda r: (hold.callback(None), r)[1])
        return hold

    def _resume(self, _: object) -> None:
        self._holding = None
        self.log.info("the HQ caught up: cannons resume")

    def _all_cannons_in(self) -> None:
        """
        Every cannon fires. Their objects live until the run ends: freeze
        them out of the garbage collector's sight (see _calm_gc).
        """
        self.log.info("all {cannons} cannons firing", cannons=self.config.cannons)
        gc.freeze()
        self._gc_frozen = True

    def _calm_gc(self) -> None:
        """
        For the run: no automatic full collections, one every
        FULL_GC_INTERVAL seconds instead. A full collection scans every
        object; with thousands of cannons, each waiting on its own timer
        and Deferred, those objects reach the oldest generation and the
        automatic full collections cost up to 15% of the rate (20,000
        cannons: 85% of the scheduled rate, 100% without them). Young
        collections go on as usual.
        """
        self._gc_thresholds = gc.get_threshold()
        young, middle, _ = self._gc_thresholds
        gc.set_threshold(young, middle, NO_AUTOMATIC_FULL_GC)
        self._full_gc = LoopingCall(gc.collect)
        self._full_gc.clock = self._clocks.reactor
        self._full_gc.start(FULL_GC_INTERVAL, now=False)

    def _thaw(self) -> None:
        if self._gc_frozen:
            gc.unfreeze()
            self._gc_frozen = False
        if self._full_gc is not None:
            if self._full_gc.running:
                self._full_gc.stop()
            self._full_gc = None
        if self._gc_thresholds is not None:
            gc.set_threshold(*self._gc_thresholds)
            self._gc_thresholds = None

    def _active_cannons(self) -> int:
        return sum(1 for c in self._cannons if c.running)

    def _deliver(self, result: Result) -> None:
        self.results += 1
        if result.error:
            self.errors += 1
        self._sink.send_result(result)
        if self._on_result is not None:
            self._on_result(result)
        if self._run_stats is not None:
            self._run_stats.record(result)

    def _end_run(self) -> None:
        """
        The cannons have stopped: log the run's summary.
        """
        self._thaw()
        http, self._http = self._http, None
        if http is not None:
            http.close().addErrback(
                lambda f: self.log.failure("closing HTTP connections", failure=f)
            )
        stats, self._run_stats = self._run_stats, None
        if stats is None:
            return
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        summary = stats.summary(
            duration=self._clocks.monotonic() - self._run_began,
            cannons=self.config.cannons,
            cannons_reached=self.cannons_started,
            dropped=self._sink.dropped,
        )
        self._on_result = None
        if self._outputs is not None:
            summary = self._outputs.run_ended(summary)
        self.last_summary = summary
        if self.summary_table_in_log:
            self.log.info(
                "run summary:\n{table}", table=summary.format_table(), summary=summary.to_dict()
            )
        else:
            self.log.info(
                "run summary: {transactions} transactions, {errors} errors, {tps:.1f} tx/s",
                transactions=summary.transactions,
                errors=summary.errors,
                tps=summary.transactions_per_second,
                summary=summary.to_dict(),
            )

    def _stop_cannons(self) -> Deferred[None]:
        """
        Stop every cannon: in-flight transactions may end within the stop
        timeout; then they are cancelled, and given CANCEL_GRACE more.
        """
        if self._cannons_stopping is not None:
            # A stop is already under way (say, kill during stop): wait for it.
            waiting: Deferred[None] = Deferred()
            self._cannons_stopping.addBoth(lambda r: (waiting.callback(None), r)[1])
            return waiting
        if self._rampup is not None:
            self._rampup.cancel()
        cannons, self._cannons = self._cannons, []
        pending = [c for c in cannons if c.started]
        if not pending:
            self._end_run()
            return defer.succeed(None)
        clock = self._clocks.reactor
        timeout = self.config.stop_timeout
        all_stopped = defer.DeferredList([c.stop() for c in pending])
        done: Deferred[None] = Deferred()
        calls = []

        def cancel_in_flight() -> None:
            self.log.warn(
                "stop timeout ({timeout}s): cancelling transactions in flight",
                timeout=timeout,
            )
            reason = f"cancelled: still running at the stop timeout ({timeout:g}s)"
            for cannon in pending:
                cannon.cancel_in_flight(reason)
            calls.append(clock.callLater(CANCEL_GRACE, give_up))

        def give_up() -> None:
            self.log.error("some cannons did not stop; going on without them")
            finish()

        def stopped(_: object) -> None:
            for call in calls:
                if call.active():
                    call.cancel()
            finish()

        def finish() -> None:
            if not done.called:
                self._end_run()
                done.callback(None)

        calls.append(clock.callLater(timeout, cancel_in_flight))
        all_stopped.addCallback(stopped)
        self._cannons_stopping = done

        def over(result: object) -> object:
            self._cannons_stopping = None
            return result

        done.addBoth(over)
        result: Deferred[None] = Deferred()
        done.addBoth(lambda r: (result.callback(None), r)[1])
        return result

    def _state_changed(self, old: State, new: State) -> None:
        if new is State.READY:
            if not self._heartbeat.running:
                self._heartbeat.start(self.config.heartbeat_interval, now=True)
            return
        if self._heartbeat.running:
            self._heartbeat.stop()
        if new is State.RUNNING or new in FINAL_STATES:
            self.send_status()
        if new in FINAL_STATES:
            self.log.info(
                "turret {state}: {results} results, {errors} errors",
                state=new.value,
                results=self.results,
                errors=self.errors,
            )
