"""
When the turret tells the HQ its status.

:class:`StatusPublisher` is the one place that decides:

- every ``heartbeat_interval`` seconds while READY (the HQ learns of a
  turret from these);
- at once when the turret starts firing and when it reaches a final state;
- when the HQ link (re)connects;
- in answer to ``status_request``, coalesced: the real HQ asks again as
  soon as it receives anything from a turret, so answering every request
  at once would make the two trade messages as fast as they can. A request
  is answered at once, unless an answer went out less than
  ``answer_interval`` seconds ago; then one answer at the end of that
  interval covers every request made meanwhile.

Nothing is sent once the turret is in a final state, but the final status.
"""

from __future__ import annotations

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall

from octtwisted._core.config import TurretConfig
from octtwisted._core.deferreds import cancel_call
from octtwisted._core.interfaces import ResultSink
from octtwisted._core.messages import StatusReport
from octtwisted._firing.lifecycle import FINAL_STATES, Lifecycle, State

#: Least time between two answers to ``status_request``, in seconds.
STATUS_ANSWER_INTERVAL = 0.5


class StatusPublisher:
    """
    :param config: what the status says of the turret (name, cannons,
        rampup, script), and the heartbeat interval.
    :param lifecycle: the turret's state, whose status word is sent.
    """

    def __init__(
        self,
        clock: IReactorTime,
        sink: ResultSink,
        config: TurretConfig,
        uuid: str,
        lifecycle: Lifecycle,
        answer_interval: float = STATUS_ANSWER_INTERVAL,
    ) -> None:
        self._clock = clock
        self._sink = sink
        self._config = config
        self._uuid = uuid
        self._lifecycle = lifecycle
        self._heartbeat_interval = config.heartbeat_interval
        self._heartbeat = LoopingCall(self.send)
        self._heartbeat.clock = clock
        self._answer_interval = answer_interval
        self._last_answer = float("-inf")
        self._answer_due: IDelayedCall | None = None

    def report(self) -> StatusReport:
        """
        The status as it is now: exactly the six keys the real HQ knows.
        """
        config = self._config
        return StatusReport(
            turret=config.name,
            status=self._lifecycle.status_word,
            uuid=self._uuid,
            rampup=config.rampup,
            script=config.script,
            cannons=config.cannons,
        )

    def send(self) -> None:
        """
        Send the status now.
        """
        self._sink.send_status(self.report())

    def _send_unless_final(self) -> None:
        if self._lifecycle.state not in FINAL_STATES:
            self.send()

    def state_changed(self, new: State) -> None:
        if new is State.READY:
            if not self._heartbeat.running:
                self._heartbeat.start(self._heartbeat_interval, now=True)
            return
        if self._heartbeat.running:
            self._heartbeat.stop()
        if new is State.RUNNING or new in FINAL_STATES:
            self.send()
        if new in FINAL_STATES:
            cancel_call(self._answer_due)
            self._answer_due = None

    def connected(self) -> None:
        """
        The HQ link (re)connected: say who we are at once.
        """
        self._send_unless_final()

    def requested(self) -> None:
        """
        A ``status_request`` arrived.
        """
        if self._answer_due is not None:
            return
        wait = self._last_answer + self._answer_interval - self._clock.seconds()
        if wait <= 0:
            self._answer()
        else:
            self._answer_due = self._clock.callLater(wait, self._answer)

    def _answer(self) -> None:
        self._answer_due = None
        self._last_answer = self._clock.seconds()
        self._send_unless_final()
