"""
The queue of frames on their way to the HQ: batching, retry, backpressure,
and the count of what was given up on.

Frames added in one turn of the reactor go out together as the parts of one
multipart ZeroMQ message (at most ``batch_frames`` parts): one wake-up of
ZeroMQ's I/O thread for many results. The HQ reads a multipart message part
by part, so it sees exactly the frames it would have seen one by one, and
ZeroMQ delivers all parts of a message or none.

When the transport is full, batches wait here, in order, and are retried
every ``retry_interval`` seconds. Nothing is lost silently: frames are only
given up on when told (:meth:`ResultQueue.give_up`, :meth:`discard`), and
then they are counted in ``dropped``.
"""

from __future__ import annotations

from collections import deque
from typing import Callable

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from octtwisted._core.deferreds import cancel_call, on_fired

#: Hands one batch to the transport: True if it took it, False if it is
#: full (the batch stays queued and is retried).
Send = Callable[[list[bytes]], bool]

#: Most frames sent as one multipart ZeroMQ message.
BATCH_FRAMES = 64

#: How often a full transport is retried, in seconds.
RETRY_INTERVAL = 0.005


class ResultQueue:
    """
    :param clock: schedules the end-of-turn batch flush and the retries.
    :param batch_frames: most frames in one batch.
    :param retry_interval: seconds between two tries of a full transport.

    The transport is attached with :meth:`attach` (and detached while it is
    being replaced); without one, batches wait.
    """

    def __init__(
        self,
        clock: IReactorTime,
        *,
        batch_frames: int = BATCH_FRAMES,
        retry_interval: float = RETRY_INTERVAL,
    ) -> None:
        self._clock = clock
        self._batch_frames = batch_frames
        self._retry_interval = retry_interval
        self._send: Send | None = None
        self._batch: list[bytes] = []
        #: frames of the current batch not to copy (None: none)
        self._kept_out: list[bytes] | None = None
        #: frames at the start of the current batch already copied
        self._copied = 0
        self._batch_call: IDelayedCall | None = None
        self._waiting: deque[list[bytes]] = deque()
        self._waiting_frames = 0
        self._retry: IDelayedCall | None = None
        self._room_waiters: list[tuple[int, Deferred[None]]] = []
        self._flush_waiters: list[Deferred[None]] = []
        #: given every batch of frames as it leaves the queue's hands for the
        #: first time, sent or not (``--results`` keeps a local copy), or None
        self.copy_batch: Callable[[list[bytes]], None] | None = None
        #: frames handed to the transport
        self.sent = 0
        #: frames given up on
        self.dropped = 0

    # The transport

    def attach(self, send: Send) -> None:
        """
        Use ``send`` from now on, and send what waits.
        """
        self._send = send
        self._drain()

    def detach(self) -> None:
        """
        No transport for now: batches wait.
        """
        self._send = None

    # Adding

    def add(self, frame: bytes, copy: bool = True) -> None:
        """
        Queue one frame; it goes out at the end of this reactor turn, or
        at once when the batch is full. ``copy=False``: not given to
        :attr:`copy_batch` (a status message, not a result).
        """
        batch = self._batch
        batch.append(frame)
        if not copy:
            if self._kept_out is None:
                self._kept_out = []
            self._kept_out.append(frame)
        if len(batch) >= self._batch_frames:
            self.send_batch()
        elif self._batch_call is None:
            self._batch_call = self._clock.callLater(0, self.send_batch)

    def send_batch(self) -> None:
        """
        Hand the current batch to the transport now (or queue it behind
        the batches already waiting).
        """
        if self._batch_call is not None:
            if self._batch_call.active():
                self._batch_call.cancel()
            self._batch_call = None
        batch, self._batch = self._batch, []
        copied, self._copied = self._copied, 0
        if self.copy_batch is not None and len(batch) > copied:
            self._copy(batch[copied:] if copied else batch)
        self._kept_out = None
        if not batch:
            return
        if self._waiting or self._send is None:
            self._enqueue(batch)
            return
        if self._send(batch):
            self.sent += len(batch)
            self._release_room_waiters()
        else:
            self._enqueue(batch)
            self._schedule_retry()

    def copy_pending(self) -> None:
        """
        Give :attr:`copy_batch` the frames of the current batch now, not
        when the batch leaves (at the end of a run: its frames are copied
        before its results file is closed; at the start of one: the frames
        before it are not its own).
        """
        batch = self._batch
        if self.copy_batch is not None and len(batch) > self._copied:
            self._copy(batch[self._copied :])
        self._copied = len(batch)

    def _copy(self, frames: list[bytes]) -> None:
        assert self.copy_batch is not None
        kept_out = self._kept_out
        if kept_out is not None:
            out = {id(frame) for frame in kept_out}
            frames = [frame for frame in frames if id(frame) not in out]
        if frames:
            self.copy_batch(frames)

    def _enqueue(self, batch: list[bytes]) -> None:
        self._waiting.append(batch)
        self._waiting_frames += len(batch)

    # Retrying

    def _schedule_retry(self) -> None:
        if self._retry is None or not self._retry.active():
            self._retry = self._clock.callLater(self._retry_interval, self._drain)

    def _drain(self) -> None:
        self._retry = None
        send = self._send
        if send is None:
            return
        waiting = self._waiting
        while waiting:
            if not send(waiting[0]):
                self._schedule_retry()
                self._release_room_waiters()
                return
            sent = len(waiting.popleft())
            self._waiting_frames -= sent
            self.sent += sent
            if self._room_waiters and self.pending() < self._room_waiters[0][0]:
                self._release_room_waiters()
        self._release_room_waiters()
        self._release_flush_waiters()

    # Waiting

    def pending(self) -> int:
        """
        Frames not yet handed to the transport: the batch being made and
        the batches waiting.
        """
        return len(self._batch) + self._waiting_frames

    def wait_for_room(self, below: int) -> Deferred[None]:
        """
        Fires once fewer than ``below`` frames are pending.
        """
        if self.pending() < below:
            return defer.succeed(None)
        d: Deferred[None] = Deferred()
        self._room_waiters.append((below, d))
        if self._batch and self._batch_call is None:
            # Only the unsent batch is in the way: send it at the end of
            # this turn, which may well make the room.
            self._batch_call = self._clock.callLater(0, self.send_batch)
        return d

    def _release_room_waiters(self, anyway: bool = False) -> None:
        if not self._room_waiters:
            return
        waiting, self._room_waiters = self._room_waiters, []
        pending = self.pending()
        for below, d in waiting:
            if anyway or pending < below:
                if not d.called:
                    d.callback(None)
            else:
                self._room_waiters.append((below, d))

    def flush(self, timeout: float) -> Deferred[None]:
        """
        Send the current batch; fires when nothing waits any more, or after
        ``timeout`` seconds, when what still waits is given up on.
        """
        self.send_batch()
        if not self._waiting:
            return defer.succeed(None)
        d: Deferred[None] = Deferred()
        self._flush_waiters.append(d)
        call = self._clock.callLater(timeout, self._flush_expired)
        return on_fired(d, lambda: cancel_call(call))

    def _flush_expired(self) -> None:
        self.give_up()
        self._release_flush_waiters()

    def _release_flush_waiters(self) -> None:
        waiters, self._flush_waiters = self._flush_waiters, []
        for d in waiters:
            d.callback(None)

    # Giving up

    def give_up(self) -> int:
        """
        Drop every waiting batch (counted in ``dropped``), release every
        room waiter, stop retrying.

        :return: how many frames were dropped.
        """
        cancel_call(self._retry)
        self._retry = None
        self._release_room_waiters(anyway=True)
        lost = self._waiting_frames
        self._waiting.clear()
        self._waiting_frames = 0
        self.dropped += lost
        return lost

    def discard(self) -> int:
        """
        Drop the current batch and every waiting one (counted in
        ``dropped``), as when they must not reach the next HQ. The copy
        (:attr:`copy_batch`) still gets the current batch's frames: a
        results file holds every result made, sent or not.

        :return: how many frames were dropped.
        """
        cancel_call(self._batch_call)
        self._batch_call = None
        self.copy_pending()
        lost = len(self._batch) + self._waiting_frames
        self._batch = []
        self._copied = 0
        self._kept_out = None
        self._waiting.clear()
        self._waiting_frames = 0
        self.dropped += lost
        return lost

    def close(self) -> None:
        """
        Cancel the pending calls (the queue is not used after this).
        """
        for call in (self._batch_call, self._retry):
            cancel_call(call)
        self._batch_call = self._retry = None
