"""
The link to the OCT HQ over ZeroMQ: the only module that owns sockets
(:func:`~octtwisted._hq.sockopts.refused_address` checks an address at
start without one).

:class:`HQLink` is a service that connects a SUB socket to the HQ's PUB
(orders) and a PUSH socket to the HQ's PULL (status and results), with
txzmq. It is the turret's :class:`~octtwisted._core.interfaces.OrderSource` and
:class:`~octtwisted._core.interfaces.ResultSink`.

Frames go out through a :class:`~octtwisted._hq.queue.ResultQueue`
(batches as multipart messages, retry when ZeroMQ's send queue is full,
waiters for room and for the flush). Results are never lost silently: only
at shutdown, when the linger runs out, or when the HQ left after a run, are
frames given up on, and then they are counted in ``dropped`` and logged.

Each batch of result frames can also go to ``frames_sent`` (the results
file of a run obeying an HQ is a copy of what was sent), which the
composition root plugs in. A run's last frames are handed over when it
ends (:meth:`HQLink.run_ended`) or when the link flushes, before the
turret closes the run.
"""

from __future__ import annotations

from typing import Callable

import zmq
from twisted.application.service import Service
from twisted.internet import defer, threads
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from txzmq import ZmqConnection, ZmqEndpoint, ZmqEndpointType, ZmqFactory
from txzmq.pubsub import ZmqSubConnection
from txzmq.pushpull import ZmqPushConnection
from zmq.utils.monitor import parse_monitor_message

from octtwisted._core import logs
from octtwisted._core.interfaces import OrderHandler
from octtwisted._core.messages import ABORTED, KILLED, Result, StatusReport
from octtwisted._hq.orders import OrderReader
from octtwisted._hq.queue import ResultQueue
from octtwisted._hq.sockopts import SocketOptions
from octtwisted._hq.wire import encode_result, encode_status


class _OrderSocket(ZmqSubConnection):
    """
    A SUB socket that hands every message's frames on as they are.

    txzmq's own SUB class expects ``tag\\0message``; the HQ sends one frame,
    ``"<topic> <json>"``, so the frames are parsed by :mod:`octtwisted._hq.wire`.
    """

    def __init__(
        self, factory: ZmqFactory, options: SocketOptions, on_frames: Callable[[list[bytes]], None]
    ) -> None:
        self._on_frames = on_frames
        super().__init__(factory)
        options.apply(self.socket)

    def messageReceived(self, message: list[bytes]) -> None:
        self._on_frames(message)


#: ZeroMQ's send flags as plain ints: or-ing the ``zmq.Flag`` members, as
#: txzmq's ``send`` does for every part, costs about a microsecond a frame
#: (13% of the reactor's time at 190,000 results/s).
_LAST_PART = int(zmq.NOBLOCK)
_MORE_PARTS = int(zmq.NOBLOCK) | int(zmq.SNDMORE)


class _ResultSocket(ZmqPushConnection):
    """
    A PUSH socket with a finite high-water mark.
    """

    #: txzmq's: the read scheduled after a write, if any
    read_scheduled: IDelayedCall | None

    def __init__(self, factory: ZmqFactory, options: SocketOptions) -> None:
        self.highWaterMark = options.send_hwm
        super().__init__(factory)
        options.apply(self.socket)

    def send(self, message: list[bytes]) -> None:
        """
        txzmq's ``send`` for a multipart message, with the flags computed
        once: raises ``zmq.Again`` (nothing sent) when the queue is full;
        then a read is scheduled, as ZeroMQ may not signal incoming events
        after a write.
        """
        send = self.socket.send
        for part in message[:-1]:
            send(part, _MORE_PARTS)
        send(message[-1], _LAST_PART)
        if self.read_scheduled is None:
            self.read_scheduled = self.factory.reactor.callLater(0, self.doRead)


class _MonitorSocket(ZmqConnection):
    """
    Reads the connection events ZeroMQ reports for the PUSH socket.
    """

    socketType = zmq.PAIR

    def __init__(
        self, factory: ZmqFactory, endpoint: ZmqEndpoint, on_event: Callable[[int], None]
    ) -> None:
        self._on_event = on_event
        super().__init__(factory, endpoint)

    def messageReceived(self, message: list[bytes]) -> None:
        self._on_event(parse_monitor_message(message)["event"])


class HQLink(Service):
    """
    :param order_address: the HQ's PUB socket, ``tcp://host:port``; None
        for a worker process of ``--processes``, which sends results only
        (the main process takes the orders and sends the status).
    :param result_address: the HQ's PULL socket.
    :param uuid: this turret's id; orders addressed to it are obeyed, like
        broadcasts, and orders addressed to other turrets are ignored.
    :param reactor: times the batches, the retries and the reports of bad
        orders; txzmq registers the sockets with it too (so it is the
        reactor itself, not a ``task.Clock``).
    :param linger: seconds ZeroMQ may take to send what is queued when the
        sockets close.
    :param options: the sockets' options (IPv6, heartbeats, send queue).
    :param frames_sent: given every batch of result frames (up to
        :data:`~octtwisted._hq.queue.BATCH_FRAMES`) as it leaves the
        queue, sent or not, or None.
    """

    log = logs.logger(logs.HQ_LINK)

    def __init__(
        self,
        *,
        order_address: str | None,
        result_address: str,
        uuid: str,
        reactor: IReactorTime,
        linger: float,
        options: SocketOptions = SocketOptions(),
        frames_sent: Callable[[list[bytes]], None] | None = None,
    ) -> None:
        self._order_address = order_address
        self._result_address = result_address
        self._reactor = reactor
        self._linger = linger
        self._options = options
        self._reader = OrderReader(reactor, uuid)
        self._factory: ZmqFactory | None = None
        self._orders: _OrderSocket | None = None
        self._push: _ResultSocket | None = None
        self.queue = ResultQueue(reactor)
        self.queue.copy_batch = frames_sent
        self._monitor: _MonitorSocket | None = None
        self._sockets_made = 0
        self._run_over = False
        self._listeners: dict[int, list[Callable[[], None]]] = {
            zmq.EVENT_HANDSHAKE_SUCCEEDED: [],
            zmq.EVENT_DISCONNECTED: [],
        }
        #: whether the PUSH socket has a connection to the HQ
        self.connected = False
        #: status frames queued since the process started
        self._statuses = 0

    @property
    def dropped(self) -> int:
        """Results given up on since the process started."""
        return self.queue.dropped

    @property
    def sent(self) -> int:
        """Frames handed to ZeroMQ since the process started."""
        return self.queue.sent

    # OrderSource

    def listen(self, handler: OrderHandler) -> None:
        self._reader.handler = handler

    # ResultSink

    def on_connected(self, listener: Callable[[], None]) -> None:
        self._listeners[zmq.EVENT_HANDSHAKE_SUCCEEDED].append(listener)

    def on_disconnected(self, listener: Callable[[], None]) -> None:
        self._listeners[zmq.EVENT_DISCONNECTED].append(listener)

    def send_status(self, status: StatusReport) -> None:
        """
        A status goes out now if the HQ is connected. While it is not, only
        a final status (Killed, Aborted) is queued: the others would be
        stale by the time the HQ comes, and the turret announces itself
        again anyway.
        """
        if self.connected or status.status in (KILLED, ABORTED):
            self._statuses += 1
            self.queue.add(encode_status(status), copy=False)

    def send_result(self, result: Result) -> None:
        self.queue.add(encode_result(result))

    @property
    def results_queued(self) -> int:
        """
        Results queued since the process started (counted from the queue's
        totals, so that sending one costs nothing more).
        """
        queue = self.queue
        return queue.sent + queue.pending() + queue.dropped - self._statuses

    def pending(self) -> int:
        """
        Frames waiting: in the current batch and in the retry queue.
        """
        return self.queue.pending()

    def wait_for_room(self, below: int) -> Deferred[None]:
        return self.queue.wait_for_room(below)

    def discard_queued(self) -> int:
        lost = self.queue.discard()
        if lost:
            self.log.info(
                "{lost} results of the ending run were queued when the next run's "
                "start came: discarded, so that they cannot reach the new HQ",
                lost=lost,
            )
        return lost

    def flush(self, timeout: float) -> Deferred[None]:
        before = self.queue.dropped
        d = self.queue.flush(timeout)

        def report(_: object) -> None:
            self._report_dropped("flush timed out", self.queue.dropped - before)

        return d.addCallback(report)

    def _report_dropped(self, why: str, lost: int) -> None:
        if lost:
            self.log.error(
                "{why}: {lost} results could not be handed to ZeroMQ and are "
                "dropped ({dropped} dropped in all)",
                why=why,
                lost=lost,
                dropped=self.queue.dropped,
            )

    def _push_batch(self, batch: list[bytes]) -> bool:
        assert self._push is not None
        try:
            self._push.send(batch)
        except zmq.Again:
            return False
        return True

    def _open_results_socket(self) -> None:
        """
        Make the PUSH socket and connect it. Its connection monitor is
        attached before it connects, so that no connection event is missed.
        """
        assert self._factory is not None
        self._sockets_made += 1
        self._push = _ResultSocket(self._factory, self._options)
        monitor_address = f"inproc://octtwisted-monitor-{id(self)}-{self._sockets_made}"
        self._push.socket.monitor(
            monitor_address, zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED
        )
        self._monitor = _MonitorSocket(
            self._factory,
            ZmqEndpoint(ZmqEndpointType.connect, monitor_address),
            self._connection_event,
        )
        self._push.addEndpoints([ZmqEndpoint(ZmqEndpointType.connect, self._result_address)])
        self.queue.attach(self._push_batch)

    def _close_results_socket(self, linger: float | None = None) -> None:
        self.queue.detach()
        push, monitor = self._push, self._monitor
        self._push = self._monitor = None
        self.connected = False
        if push is not None:
            try:
                push.socket.disable_monitor()
            except zmq.ZMQError:
                pass
            if linger is not None:
                push.socket.set(zmq.LINGER, int(linger * 1000))
            push.shutdown()
        if monitor is not None:
            monitor.shutdown()

    # The end of a run

    def run_started(self) -> None:
        # Frames queued before the run are not the run's: handed over now.
        self.queue.copy_pending()
        self._run_over = False

    def run_ended(self) -> None:
        """
        The turret stopped firing. The real HQ stops reading as soon as it
        has published ``stop``: results it did not take must not wait in the
        socket for the next HQ (they would be stored in the next run). So
        once the HQ has gone, the results socket is made anew, empty.

        The run's frames still in this turn's batch go to ``frames_sent``
        now, before the turret closes the run (and its results file).
        """
        self.queue.copy_pending()
        self._run_over = True
        if not self.connected:
            self._discard_for_next_run()

    def _discard_for_next_run(self) -> None:
        self._run_over = False
        if self._push is None:
            return
        ours = self.queue.discard()
        self._close_results_socket(linger=0)
        self._open_results_socket()
        self.log.info(
            "the HQ left after the run: results it did not take ({ours} queued "
            "here, and any ZeroMQ still held) were discarded so that they "
            "cannot reach the next run",
            ours=ours,
        )

    def _connection_event(self, event: int) -> None:
        if event == zmq.EVENT_HANDSHAKE_SUCCEEDED and not self.connected:
            self.connected = True
            self.log.info("results socket connected to the HQ at {address}", address=self._result_address)
            for listener in self._listeners[event]:
                listener()
        elif event == zmq.EVENT_DISCONNECTED and self.connected:
            self.connected = False
            if self._run_over:
                self._reactor.callLater(0, self._discard_for_next_run)
                return
            self.log.warn(
                "results socket lost its connection to the HQ at {address} after "
                "{results} results: those the HQ had not yet read are lost with the "
                "connection (OCT has no acknowledgements); ZeroMQ reconnects by "
                "itself, and the results made from now on wait and go out then",
                address=self._result_address,
                results=self.results_queued,
            )
            for listener in self._listeners[event]:
                listener()

    # Service

    def startService(self) -> None:
        super().startService()
        factory = ZmqFactory()
        factory.lingerPeriod = int(self._linger * 1000)
        factory.reactor = self._reactor
        self._factory = factory
        self._open_results_socket()
        if self._order_address is None:
            self.log.info("sending results to the HQ at {results}", results=self._result_address)
            return
        self._orders = _OrderSocket(factory, self._options, self._reader.frames_received)
        self._orders.addEndpoints([ZmqEndpoint(ZmqEndpointType.connect, self._order_address)])
        self._orders.subscribe(b"")
        self._orders.subscribe(self._reader.uuid.encode("utf-8"))
        self.log.info(
            "connecting to the HQ: orders from {orders}, results to {results}",
            orders=self._order_address,
            results=self._result_address,
        )

    def stopService(self) -> Deferred[None]:
        """
        Close the sockets: ZeroMQ gets ``linger`` seconds to send what it
        holds; the context is ended in a thread so the reactor never waits.
        """
        super().stopService()
        self.queue.send_batch()
        self._reader.close()
        self._report_dropped("shutting down", self.queue.give_up())
        self.queue.close()
        self._close_results_socket()
        factory, self._factory = self._factory, None
        self._orders = None
        if factory is None:
            return defer.succeed(None)
        for connection in list(factory.connections):
            connection.shutdown()
        context = factory.context
        return threads.deferToThread(context.term)
