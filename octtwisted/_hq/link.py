"""
The link to the OCT HQ over ZeroMQ: the only module that owns sockets.

:class:`HQLink` is a service that connects a SUB socket to the HQ's PUB
(orders) and a PUSH socket to the HQ's PULL (status and results), with
txzmq. It is the turret's :class:`~octtwisted._core.interfaces.OrderSource` and
:class:`~octtwisted._core.interfaces.ResultSink`.

Frames made in one turn of the reactor go out together as the parts of one
multipart ZeroMQ message: one wake-up of ZeroMQ's I/O thread for many
results. The HQ reads a multipart message part by part (each ``recv()``
returns one part), so it sees exactly the frames it would have seen one by
one, and ZeroMQ delivers all parts of a message or none.

Results are never lost silently: when ZeroMQ's send queue is full
(``zmq.Again``), frames wait in our own queue and are retried; the turret
pauses its cannons while that queue is long (see ``max_pending_results``).
Only at shutdown, when the linger runs out, are frames given up on, and
then they are counted in ``dropped`` and logged.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

import zmq
from twisted.application.service import Service
from twisted.internet import defer, threads
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from txzmq import ZmqConnection, ZmqEndpoint, ZmqEndpointType, ZmqFactory
from zmq.utils.monitor import parse_monitor_message
from txzmq.pubsub import ZmqSubConnection
from txzmq.pushpull import ZmqPushConnection

from octtwisted._core.interfaces import OrderHandler
from octtwisted._core.messages import ABORTED, KILLED, Result, StatusReport
from octtwisted._hq.ratelimit import WarningLimiter
from octtwisted._hq.wire import BadOrder, decode_order, encode_result, encode_status
from octtwisted._core import logs

#: ZeroMQ's own send queue, in messages, before ``zmq.Again``. A message
#: is a batch of up to BATCH_FRAMES frames, so ZeroMQ holds at most
#: SEND_HWM * BATCH_FRAMES results (12,800); past that they wait in our own
#: queue, where they are counted, and the cannons are held back.
SEND_HWM = 200

#: How often a full send queue is retried, in seconds.
RETRY_INTERVAL = 0.005

#: Most frames sent as one multipart ZeroMQ message (see HQLink._flush).
BATCH_FRAMES = 64


class _OrderSocket(ZmqSubConnection):
    """
    A SUB socket that hands every message's frames on as they are.

    txzmq's own SUB class expects ``tag\\0message``; the HQ sends one frame,
    ``"<topic> <json>"``, so the frames are parsed by :mod:`octtwisted._hq.wire`.
    """

    def __init__(self, factory: ZmqFactory, endpoint: ZmqEndpoint, on_frames: Any) -> None:
        self._on_frames = on_frames
        super().__init__(factory, endpoint)

    def messageReceived(self, message: list[bytes]) -> None:
        self._on_frames(message)


class _ResultSocket(ZmqPushConnection):
    """
    A PUSH socket with a finite high-water mark.
    """

    def __init__(self, factory: ZmqFactory, endpoint: ZmqEndpoint | None, hwm: int) -> None:
        self.highWaterMark = hwm
        super().__init__(factory, endpoint)


class _MonitorSocket(ZmqConnection):
    """
    Reads the connection events ZeroMQ reports for the PUSH socket.
    """

    socketType = zmq.PAIR

    def __init__(self, factory: ZmqFactory, endpoint: ZmqEndpoint, on_event: Any) -> None:
        self._on_event = on_event
        super().__init__(factory, endpoint)

    def messageReceived(self, message: list[bytes]) -> None:
        self._on_event(parse_monitor_message(message)["event"])


class HQLink(Service):
    """
    :param order_address: the HQ's PUB socket, ``tcp://host:port``.
    :param result_address: the HQ's PULL socket.
    :param uuid: this turret's id; orders addressed to it are obeyed, like
        broadcasts, and orders addressed to other turrets are ignored.
    :param reactor: the reactor the sockets are registered with.
    :param linger: seconds ZeroMQ may take to send what is queued when the
        sockets close.
    """

    log = logs.logger(logs.HQ_LINK)

    def __init__(
        self,
        *,
        order_address: str,
        result_address: str,
        uuid: str,
        reactor: Any,
        linger: float,
        send_hwm: int = SEND_HWM,
    ) -> None:
        self._order_address = order_address
        self._result_address = result_address
        self._uuid = uuid
        self._reactor = reactor
        self._linger = linger
        self._send_hwm = send_hwm
        self._handler: OrderHandler | None = None
        self._factory: ZmqFactory | None = None
        self._orders: _OrderSocket | None = None
        self._push: _ResultSocket | None = None
        self._queue: deque[list[bytes]] = deque()
        self._queued = 0  # frames in _queue
        self._batch: list[bytes] = []
        self._batch_call: IDelayedCall | None = None
        self._retry: IDelayedCall | None = None
        self._flush_waiters: list[Deferred[None]] = []
        #: given every result frame as it is sent (``--results`` keeps a
        #: local copy of what was sent), or None
        self.copy_result: Callable[[bytes], None] | None = None
        self._room_waiters: list[tuple[int, Deferred[None]]] = []
        self._monitor: _MonitorSocket | None = None
        self._sockets_made = 0
        self._run_over = False
        self._connect_listeners: list[Any] = []
        self._disconnect_listeners: list[Any] = []
        #: whether the PUSH socket has a connection to the HQ
        self.connected = False
        self._bad_orders = WarningLimiter(reactor)
        self._suppressed_report: IDelayedCall | None = None
        self.dropped = 0
        self.sent = 0

    # OrderSource

    def listen(self, handler: OrderHandler) -> None:
        self._handler = handler

    def _frames_received(self, frames: list[bytes]) -> None:
        try:
            order = decode_order(frames)
        except BadOrder as e:
            if self._bad_orders.allow():
                self.log.warn(
                    "ignored a bad order: {problem} (frame starts {head!r})",
                    problem=str(e),
                    head=frames[0][:60] if frames else b"",
                )
            elif self._suppressed_report is None:
                self._suppressed_report = self._reactor.callLater(
                    self._bad_orders.period, self._report_suppressed
                )
            return
        if order.topic not in ("", self._uuid):
            return  # addressed to another turret
        if self._handler is not None:
            self._handler(order)

    def _report_suppressed(self) -> None:
        self._suppressed_report = None
        count = self._bad_orders.take_suppressed()
        if count:
            self.log.warn(
                "{count} more bad orders ignored and not logged in the last {period:g}s",
                count=count,
                period=self._bad_orders.period,
            )

    # ResultSink

    def on_connected(self, listener: Any) -> None:
        self._connect_listeners.append(listener)

    def on_disconnected(self, listener: Any) -> None:
        self._disconnect_listeners.append(listener)

    def send_status(self, status: StatusReport) -> None:
        """
        A status goes out now if the HQ is connected. While it is not, only
        a final status (Killed, Aborted) is queued: the others would be
        stale by the time the HQ comes, and the turret announces itself
        again anyway.
        """
        if self.connected or status.status in (KILLED, ABORTED):
            self._send(encode_status(status))

    def send_result(self, result: Result) -> None:
        frame = encode_result(result)
        self._send(frame)
        if self.copy_result is not None:
            self.copy_result(frame)

    def pending(self) -> int:
        """
        Frames waiting: in the current batch and in the retry queue.
        """
        return len(self._batch) + self._queued

    def wait_for_room(self, below: int) -> Deferred[None]:
        if self.pending() < below:
            return defer.succeed(None)
        d: Deferred[None] = Deferred()
        self._room_waiters.append((below, d))
        return d

    def _release_room_waiters_anyway(self) -> None:
        waiting, self._room_waiters = self._room_waiters, []
        for _, d in waiting:
            if not d.called:
                d.callback(None)

    def _release_room_waiters(self) -> None:
        waiting, self._room_waiters = self._room_waiters, []
        pending = self.pending()
        for below, d in waiting:
            if pending < below:
                if not d.called:
                    d.callback(None)
            else:
                self._room_waiters.append((below, d))

    def flush(self, timeout: float) -> Deferred[None]:
        self._flush_batch()
        if not self._queue:
            return defer.succeed(None)
        d: Deferred[None] = Deferred()
        self._flush_waiters.append(d)
        call = self._reactor.callLater(timeout, self._flush_expired)
        d.addBoth(lambda r: (call.cancel() if call.active() else None, r)[1])
        return d

    def _flush_expired(self) -> None:
        self._give_up("flush timed out")
        self._release_flush_waiters()

    def _release_flush_waiters(self) -> None:
        waiters, self._flush_waiters = self._flush_waiters, []
        for d in waiters:
            d.callback(None)

    def _give_up(self, why: str) -> None:
        self._release_room_waiters_anyway()
        if self._queue:
            lost = self._queued
            self.dropped += lost
            self._queue.clear()
            self._queued = 0
            self.log.error(
                "{why}: {lost} results could not be handed to ZeroMQ and are "
                "dropped ({dropped} dropped in all)",
                why=why,
                lost=lost,
                dropped=self.dropped,
            )

    def _send(self, frame: bytes) -> None:
        batch = self._batch
        batch.append(frame)
        if len(batch) >= BATCH_FRAMES:
            self._flush_batch()
        elif self._batch_call is None:
            self._batch_call = self._reactor.callLater(0, self._flush_batch)

    def _flush_batch(self) -> None:
        if self._batch_call is not None:
            if self._batch_call.active():
                self._batch_call.cancel()
            self._batch_call = None
        batch, self._batch = self._batch, []
        if not batch:
            return
        if self._queue or self._push is None:
            self._enqueue(batch)
            return
        try:
            self._push.send(batch)
        except zmq.Again:
            self._enqueue(batch)
            self._schedule_retry()
        else:
            self.sent += len(batch)

    def _enqueue(self, batch: list[bytes]) -> None:
        self._queue.append(batch)
        self._queued += len(batch)

    def _schedule_retry(self) -> None:
        if self._retry is None or not self._retry.active():
            self._retry = self._reactor.callLater(RETRY_INTERVAL, self._drain)

    def _drain(self) -> None:
        self._retry = None
        push = self._push
        if push is None:
            return
        queue = self._queue
        while queue:
            try:
                push.send(queue[0])
            except zmq.Again:
                self._schedule_retry()
                return
            sent = len(queue.popleft())
            self._queued -= sent
            self.sent += sent
            if self._room_waiters and self.pending() < self._room_waiters[0][0]:
                self._release_room_waiters()
        self._release_room_waiters()
        self._release_flush_waiters()

    def _open_results_socket(self) -> None:
        """
        Make the PUSH socket and connect it. Its connection monitor is
        attached before it connects, so that no connection event is missed.
        """
        assert self._factory is not None
        self._sockets_made += 1
        self._push = _ResultSocket(self._factory, None, self._send_hwm)
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

    def _close_results_socket(self, linger: float | None = None) -> None:
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
        self._run_over = False

    def run_ended(self) -> None:
        """
        The turret stopped firing. The real HQ stops reading as soon as it
        has published ``stop``: results it did not take must not wait in the
        socket for the next HQ (they would be stored in the next run). So
        once the HQ has gone, the results socket is made anew, empty.
        """
        self._run_over = True
        if not self.connected:
            self._discard_for_next_run()

    def _discard_for_next_run(self) -> None:
        self._run_over = False
        if self._push is None:
            return
        self._flush_batch()
        ours = self._queued
        self._queue.clear()
        self._queued = 0
        self.dropped += ours
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
            for listener in self._connect_listeners:
                listener()
        elif event == zmq.EVENT_DISCONNECTED and self.connected:
            self.connected = False
            if self._run_over:
                self._reactor.callLater(0, self._discard_for_next_run)
                return
            self.log.warn(
                "results socket lost its connection to the HQ at {address}; "
                "ZeroMQ reconnects by itself, results wait meanwhile",
                address=self._result_address,
            )
            for listener in self._disconnect_listeners:
                listener()

    # Service

    def startService(self) -> None:
        super().startService()
        factory = ZmqFactory()
        factory.lingerPeriod = int(self._linger * 1000)
        factory.reactor = self._reactor
        self._factory = factory
        self._open_results_socket()
        self._orders = _OrderSocket(
            factory,
            ZmqEndpoint(ZmqEndpointType.connect, self._order_address),
            self._frames_received,
        )
        self._orders.subscribe(b"")
        self._orders.subscribe(self._uuid.encode("utf-8"))
        self.log.info(
            "connecting to the HQ: orders from {orders}, results to {results}",
            orders=self._order_address,
            results=self._result_address,
        )
        if self._queue:
            self._drain()

    def stopService(self) -> Deferred[None]:
        """
        Close the sockets: ZeroMQ gets ``linger`` seconds to send what it
        holds; the context is ended in a thread so the reactor never waits.
        """
        super().stopService()
        self._flush_batch()
        for call in (self._retry, self._suppressed_report):
            if call is not None and call.active():
                call.cancel()
        self._give_up("shutting down")
        self._close_results_socket()
        factory, self._factory = self._factory, None
        self._orders = None
        if factory is None:
            return defer.succeed(None)
        for connection in list(factory.connections):
            connection.shutdown()
        context = factory.context
        return threads.deferToThread(context.term)
