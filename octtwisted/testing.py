"""
Test doubles for code that talks to an OCT HQ, shipped with the turret.

- :class:`FakeHQ`: an in-process HQ with real ZeroMQ PUB and PULL sockets
  bound on 127.0.0.1 (free ports). It publishes orders exactly as the real
  HQ does (one frame, ``"<topic> <json>"``) and records the status and
  result messages it receives, telling them apart as the real HQ does (a
  substring test for ``status``).
- :class:`FakeOrderSource` and :class:`RecordingSink`: in-memory stand-ins
  for the ZeroMQ link, for unit tests of the turret core.
- :class:`StubFastHTTP`: ``self.fast_http`` answered by a ``twisted.web``
  resource in memory, to unit-test a script's own logic with no server.

The test suite checks that the in-memory fakes and the real sockets record
the same messages for the same run.
"""

from __future__ import annotations

__all__ = [
    "FakeHQ",
    "FakeOrderSource",
    "InMemoryTurret",
    "RecordingSink",
    "StubFastHTTP",
    "make_turret",
]

import json
from typing import Any, Callable

import attrs
from twisted.internet import defer
from twisted.internet.defer import Deferred

from octtwisted._core.deferreds import on_fired
from octtwisted._core.messages import Order, Result, StatusReport
from octtwisted._hq.localsink import LocalSink
from octtwisted._hq.wire import (
    encode_order,
    encode_result,
    encode_status,
    is_status_frame,
)
from octtwisted._http.stub import StubFastHTTP


@attrs.define
class _Waiter:
    test: Callable[[], Any]
    deferred: Deferred[Any]


class _Recorder:
    """
    Status and result messages, as the HQ would decode them, with waiting.
    """

    def __init__(self) -> None:
        self.statuses: list[dict[str, Any]] = []
        self.results: list[dict[str, Any]] = []
        self.frames: list[bytes] = []
        self._waiters: list[_Waiter] = []

    def record_frame(self, frame: bytes) -> None:
        self.frames.append(frame)
        message = json.loads(frame)
        if is_status_frame(frame):
            self.statuses.append(message)
        else:
            self.results.append(message)
        self._check_waiters()

    def _check_waiters(self) -> None:
        for waiter in list(self._waiters):
            value = waiter.test()
            if value is not None and not waiter.deferred.called:
                self._waiters.remove(waiter)
                waiter.deferred.callback(value)

    def wait_until(self, test: Callable[[], Any], timeout: float, what: str = "condition") -> Deferred[Any]:
        """
        Fires with ``test()`` once it returns something other than None,
        checked now and on every message; fails with ``TimeoutError``
        after ``timeout`` seconds.
        """
        from twisted.internet import reactor

        value = test()
        if value is not None:
            return defer.succeed(value)
        d: Deferred[Any] = Deferred()
        waiter = _Waiter(test, d)
        self._waiters.append(waiter)

        def timed_out(result: Any, timeout: float) -> Any:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            raise TimeoutError(
                f"no {what} after {timeout}s "
                f"({len(self.statuses)} statuses, {len(self.results)} results; "
                f"last status: {self.statuses[-1] if self.statuses else None})"
            )

        d.addTimeout(timeout, reactor, onTimeoutCancel=timed_out)
        return d

    def wait_for_status(
        self, status: str, uuid: str | None = None, timeout: float = 15.0, after: int = 0
    ) -> Deferred[dict[str, Any]]:
        """
        Fires with the first status message (from index ``after`` on) whose
        ``status`` is ``status`` (and ``uuid``, if given).
        """

        def test() -> dict[str, Any] | None:
            for message in self.statuses[after:]:
                if message.get("status") == status and (uuid is None or message.get("uuid") == uuid):
                    return message
            return None

        return self.wait_until(test, timeout, f"status {status!r}")

    def wait_for_results(self, count: int, timeout: float = 15.0) -> Deferred[list[dict[str, Any]]]:
        """
        Fires with the results once at least ``count`` have arrived.
        """
        return self.wait_until(
            lambda: list(self.results) if len(self.results) >= count else None,
            timeout,
            f"{count} results",
        )


#: Most messages FakeHQ's PULL socket reads in one turn of the reactor.
READ_BATCH = 256


class FakeHQ(_Recorder):
    """
    An OCT HQ in this process, over real ZeroMQ sockets on 127.0.0.1.

    Call :meth:`start` to bind (free ports are chosen), :meth:`stop` to
    close. :meth:`turret_config` gives the ``hq_*`` keys for a turret.
    """

    def __init__(self, host: str = "127.0.0.1", receive_hwm: int = 0) -> None:
        """
        :param host: the address to bind on; an IPv6 one (``"::1"``) too.
        :param receive_hwm: the PULL socket's high-water mark; 0 (no limit)
            is what the real HQ uses. A finite one lets a paused HQ push
            back on the turret (see :meth:`pause_results`).
        """
        super().__init__()
        self.host = host
        self.receive_hwm = receive_hwm
        self.publisher_port = 0
        self.rc_port = 0
        self._factory: Any = None
        self._pub: Any = None
        self._pull: Any = None
        #: whether the PULL socket is not read (pause_results)
        self._paused = False

    def start(self, publisher_port: int = 0, rc_port: int = 0) -> None:
        """
        Bind the PUB and PULL sockets (port 0: a free port).
        """
        import zmq
        from txzmq import ZmqFactory
        from txzmq.pubsub import ZmqPubConnection

        def bound_port(connection: Any) -> int:
            address = connection.socket.get(zmq.LAST_ENDPOINT).decode()
            return int(address.rsplit(":", 1)[1])

        self._factory = ZmqFactory()
        self._factory.lingerPeriod = 0
        self._pub = self._bind(ZmqPubConnection(self._factory), publisher_port)
        self._pull = self._make_pull(rc_port)
        self.publisher_port = bound_port(self._pub)
        self.rc_port = bound_port(self._pull)

    def _endpoint(self, port: int) -> Any:
        from txzmq import ZmqEndpoint, ZmqEndpointType

        host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6
        where = f"tcp://{host}:{port}" if port else f"tcp://{host}:*"
        return ZmqEndpoint(ZmqEndpointType.bind, where)

    def _bind(self, connection: Any, port: int) -> Any:
        import zmq

        connection.socket.set(zmq.IPV6, int(":" in self.host))
        connection.addEndpoints([self._endpoint(port)])
        return connection

    def _make_pull(self, port: int) -> Any:
        import zmq
        from txzmq.pushpull import ZmqPullConnection

        recorder = self

        class Pull(ZmqPullConnection):
            highWaterMark = self.receive_hwm
            read_scheduled: Any  # txzmq's, untyped

            def doRead(self) -> None:
                """
                txzmq's ``doRead`` reads for as long as messages come: a
                turret that sends faster than this process records would
                keep the reactor in it for ever (no order published, no
                turret output read, a pause not obeyed). So read at most
                READ_BATCH messages, then let the reactor turn.
                """
                from twisted.internet import reactor

                if self.read_scheduled is not None:
                    if not self.read_scheduled.called:
                        self.read_scheduled.cancel()
                    self.read_scheduled = None
                for _ in range(READ_BATCH):
                    if self.factory is None or recorder._paused:
                        return
                    if not self.socket.get(zmq.EVENTS) & zmq.POLLIN:
                        return
                    try:
                        message = self._readMultipart()
                    except zmq.Again:
                        continue
                    self.messageReceived(message)
                # More may wait, and the descriptor is edge-triggered.
                self.read_scheduled = reactor.callLater(0, self.doRead)

            def onPull(self, message: list[bytes]) -> None:
                # A multipart message is read part by part, as the HQ's
                # recv() does: each part is one status or result.
                for frame in message:
                    recorder.record_frame(frame)

        return self._bind(Pull(self._factory), port)

    def pause_results(self) -> None:
        """
        Stop reading the PULL socket (a stalled HQ), at once: not even the
        rest of a burst being read is.
        """
        from twisted.internet import reactor

        self._paused = True
        reactor.removeReader(self._pull)

    def resume_results(self) -> None:
        """
        Read the PULL socket again, starting with what waited.
        """
        from twisted.internet import reactor

        self._paused = False
        reactor.addReader(self._pull)
        self._pull.doRead()

    def stop(self) -> None:
        """
        Close the sockets at once (what was not received is lost).
        """
        if self._factory is not None:
            self._factory.shutdown()
            self._factory = None

    def close_results(self) -> None:
        """
        Close only the PULL socket, as an HQ that goes away does.
        """
        self._pull.shutdown()
        self._pull = None

    def reopen_results(self) -> None:
        """
        Bind the PULL socket again on the same port (the HQ is back).
        """
        self._paused = False  # a new socket is read
        self._pull = self._make_pull(self.rc_port)

    def turret_config(self, **keys: Any) -> dict[str, Any]:
        """
        The ``hq_*`` keys that point a turret at this HQ, plus ``keys``.
        """
        config = {
            "hq_address": self.host,
            "hq_publisher": self.publisher_port,
            "hq_rc": self.rc_port,
        }
        config.update(keys)
        return config

    def publish(self, command: str, msg: Any = None, topic: str = "") -> None:
        """
        Publish an order as the real HQ does.
        """
        self._pub.send(encode_order(Order(command=command, msg=msg, topic=topic)))

    def publish_raw(self, frames: bytes | list[bytes]) -> None:
        """
        Publish anything (one frame, or a list of frames).
        """
        self._pub.send(frames)

    def handshake(self, uuid: str, timeout: float = 15.0, interval: float = 0.1) -> Deferred[dict[str, Any]]:
        """
        Make sure the turret ``uuid`` hears our orders: publish
        ``status_request`` every ``interval`` until it answers one.
        (PUB drops what it publishes before a subscriber has joined.)
        """
        from twisted.internet.task import LoopingCall

        seen = sum(1 for s in self.statuses if s.get("uuid") == uuid)
        loop = LoopingCall(self.publish, "status_request", None)
        loop.start(interval, now=True)

        def answered() -> dict[str, Any] | None:
            mine = [s for s in self.statuses if s.get("uuid") == uuid]
            return mine[-1] if len(mine) > seen else None

        d = self.wait_until(answered, timeout, f"status answer from {uuid}")
        on_fired(d, lambda: loop.stop() if loop.running else None)
        return d


class FakeOrderSource:
    """
    An in-memory :class:`~octtwisted._core.interfaces.OrderSource`.
    """

    def __init__(self) -> None:
        self.handler: Callable[[Order], None] | None = None

    def listen(self, handler: Callable[[Order], None]) -> None:
        self.handler = handler

    def order(self, command: str, msg: Any = None, topic: str = "") -> None:
        """
        Deliver one order to the turret.
        """
        assert self.handler is not None, "the turret is not listening"
        self.handler(Order(command=command, msg=msg, topic=topic))


class RecordingSink(_Recorder, LocalSink):
    """
    An in-memory :class:`~octtwisted._core.interfaces.ResultSink` that records
    what would have gone over the wire, encoded and decoded the same way.
    """

    def __init__(self) -> None:
        _Recorder.__init__(self)
        LocalSink.__init__(self)

    def send_status(self, status: StatusReport) -> None:
        self.record_frame(encode_status(status))

    def send_result(self, result: Result) -> None:
        self.delivered += 1
        self.record_frame(encode_result(result))


@attrs.frozen
class InMemoryTurret:
    """
    A turret core wired to in-memory fakes, made by :func:`make_turret`.

    :ivar turret: the ``TurretService`` (started).
    :ivar orders: give it orders: ``orders.order("start", "open fire")``.
    :ivar sink: what it sent (``statuses``, ``results``).
    :ivar exits: the exit statuses it asked for, instead of ending the process.
    """

    turret: Any
    orders: FakeOrderSource
    sink: Any
    exits: list[int]


def make_turret(
    transaction_class: Any,
    *,
    clock: Any,
    cannons: int = 1,
    rampup: float = 0,
    sink: Any = None,
    steps: Any = None,
    gc: Any = None,
    uuid: str = "turret-1",
    config: Any = None,
    **keys: Any,
) -> InMemoryTurret:
    """
    A started turret core that runs ``transaction_class`` on the reactor,
    with every clock driven by ``clock`` (a ``task.Clock``), orders from a
    :class:`FakeOrderSource` and results to a :class:`RecordingSink` (or
    ``sink``). ``keys`` are more config keys (``stop_timeout=1``...), or
    ``config`` is a whole ``TurretConfig``.
    No file, socket or thread is used, and the process's garbage
    collector is left alone (unless ``gc`` is given).
    """
    from pathlib import Path

    from octtwisted._core.clocks import Clocks
    from octtwisted._core.config import parse_config
    from octtwisted._firing.runkeeper import local_runs
    from octtwisted._firing.steps import ReactorCannonFactory
    from octtwisted._firing.turret import TurretService

    if config is None:
        here = Path(__file__).absolute()  # "script" must name a file that exists
        raw = {"name": "test-turret", "cannons": cannons, "rampup": rampup, "script": here.name}
        raw.update(keys)
        config = parse_config(raw, here, standalone=True)
    orders = FakeOrderSource()
    recorded = sink if sink is not None else RecordingSink()
    exits: list[int] = []
    clocks = Clocks.fake(clock)
    turret = TurretService(
        config=config,
        uuid=uuid,
        make_run=local_runs(
            config=config,
            transaction_class=transaction_class,
            steps=steps if steps is not None else ReactorCannonFactory(),
            clocks=clocks,
            sink=recorded,
            gc=gc,
        ),
        orders=orders,
        sink=recorded,
        clocks=clocks,
        exit=exits.append,
    )
    turret.startService()
    return InMemoryTurret(turret=turret, orders=orders, sink=recorded, exits=exits)
