"""
The result queue on its own (:class:`~octtwisted._hq.queue.ResultQueue`),
with ``task.Clock`` and a fake transport: batching, retry while the
transport is full, room and flush waiters, and the dropped count; and the
HQ link's copy of the frames it sends, at the edges of a run.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from octtwisted._core.messages import Result, StatusReport
from octtwisted._hq.queue import RETRY_INTERVAL, ResultQueue
from octtwisted._hq.wire import encode_result


class FakeTransport:
    """
    Takes batches while ``room`` allows (None: always), like a PUSH socket
    with a high-water mark counted in messages.
    """

    def __init__(self, room: int | None = None) -> None:
        self.room = room
        self.batches: list[list[bytes]] = []

    def send(self, batch: list[bytes]) -> bool:
        if self.room is not None:
            if self.room <= 0:
                return False
            self.room -= 1
        self.batches.append(list(batch))
        return True

    @property
    def frames(self) -> list[bytes]:
        return [frame for batch in self.batches for frame in batch]


def frames(count: int, start: int = 0) -> list[bytes]:
    return [b"%d" % i for i in range(start, start + count)]


class BatchingTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.transport = FakeTransport()
        self.queue = ResultQueue(self.clock, batch_frames=4)
        self.queue.attach(self.transport.send)

    def test_one_batch_per_turn(self) -> None:
        """
        Frames added in one turn go out together at the end of it, in order.
        """
        for frame in frames(3):
            self.queue.add(frame)
        self.assertEqual(self.transport.batches, [])
        self.assertEqual(self.queue.pending(), 3)
        self.clock.advance(0)
        self.assertEqual(self.transport.batches, [frames(3)])
        self.assertEqual((self.queue.pending(), self.queue.sent), (0, 3))

    def test_full_batch_goes_at_once(self) -> None:
        """
        A batch of ``batch_frames`` goes out at once, without waiting for
        the end of the turn.
        """
        for frame in frames(5):
            self.queue.add(frame)
        self.assertEqual(self.transport.batches, [frames(4)])
        self.clock.advance(0)
        self.assertEqual(self.transport.frames, frames(5))

    def test_copy_replaced_within_a_turn(self) -> None:
        """
        When the copy is replaced in the middle of a turn (a run's results
        file closed, the next one opened), the frames added before go to
        the first copy and the later ones to the second, each once.
        """
        first: list[bytes] = []
        second: list[bytes] = []
        self.queue.copy_batch = first.extend
        self.queue.add(b"a")
        self.queue.add(b"status", copy=False)
        self.queue.copy_pending()
        self.queue.copy_batch = second.extend
        self.queue.add(b"b")
        self.clock.advance(0)
        self.assertEqual((first, second), ([b"a"], [b"b"]))
        self.assertEqual(self.transport.frames, [b"a", b"status", b"b"])

    def test_waits_without_transport(self) -> None:
        """
        Detached, batches wait (in order); attached again, they go out.
        """
        self.queue.detach()
        for frame in frames(6):
            self.queue.add(frame)
        self.clock.advance(0)
        self.assertEqual(self.queue.pending(), 6)
        other = FakeTransport()
        self.queue.attach(other.send)
        self.assertEqual(other.frames, frames(6))
        self.assertEqual(self.queue.pending(), 0)


class RetryTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.transport = FakeTransport(room=1)
        self.queue = ResultQueue(self.clock, batch_frames=2)
        self.queue.attach(self.transport.send)

    def test_full_transport_retried_in_order(self) -> None:
        """
        When the transport is full, batches wait and are retried every
        RETRY_INTERVAL, in order; none is lost or sent twice.
        """
        for frame in frames(6):
            self.queue.add(frame)
        self.assertEqual(self.transport.frames, frames(2))
        self.assertEqual(self.queue.pending(), 4)
        self.clock.advance(RETRY_INTERVAL)
        self.assertEqual(self.queue.pending(), 4)
        self.transport.room = 10
        self.clock.advance(RETRY_INTERVAL)
        self.assertEqual(self.transport.frames, frames(6))
        self.assertEqual((self.queue.pending(), self.queue.sent, self.queue.dropped), (0, 6, 0))

    def test_each_frame_copied_once_in_order(self) -> None:
        """
        ``copy_batch`` (the results file's copy) gets every frame once, in
        order, as its batch leaves the turn it was added in: retried
        batches are not copied again, and waiting ones are copied already.
        """
        copied: list[bytes] = []
        self.queue.copy_batch = copied.extend
        for frame in frames(6):
            self.queue.add(frame)
        self.assertEqual(copied, frames(6))
        self.assertEqual(self.transport.frames, frames(2))
        self.transport.room = 10
        self.clock.advance(RETRY_INTERVAL)
        self.assertEqual(self.transport.frames, frames(6))
        self.assertEqual(copied, frames(6))

    def test_discarded_frames_are_copied(self) -> None:
        """
        Frames discarded before they left (the HQ went away) are counted
        as dropped and still copied, once: the results file holds every
        result made.
        """
        copied: list[bytes] = []
        self.queue.copy_batch = copied.extend
        for frame in frames(5):
            self.queue.add(frame)
        self.assertEqual(self.queue.discard(), 3)
        self.clock.advance(1)
        self.assertEqual(copied, frames(5))
        self.assertEqual(self.queue.dropped, 3)

    def test_frames_kept_out_of_the_copy(self) -> None:
        """
        A frame added with ``copy=False`` (a status message) is sent in its
        place but not copied; the batch's other frames are.
        """
        copied: list[bytes] = []
        self.queue.copy_batch = copied.extend
        self.transport.room = 10
        status = b"status 1"
        self.queue.add(b"a")
        self.queue.add(status, copy=False)
        self.queue.add(b"b")
        self.clock.advance(0)
        self.assertEqual(self.transport.frames, [b"a", status, b"b"])
        self.assertEqual(copied, [b"a", b"b"])

    def test_room_waiter_released_below_mark(self) -> None:
        """
        ``wait_for_room(below)`` fires once fewer than ``below`` frames
        are pending, not before.
        """
        for frame in frames(6):
            self.queue.add(frame)
        room = self.queue.wait_for_room(3)
        self.assertNoResult(room)
        self.transport.room = 1
        self.clock.advance(RETRY_INTERVAL)
        self.assertEqual(self.queue.pending(), 2)
        self.successResultOf(room)

    def test_room_waiter_for_the_unsent_batch_alone(self) -> None:
        """
        A mark below the batch size: the batch being made is sent at the
        end of the turn, which makes the room (the waiter does not wait
        for a retry that never comes).
        """
        queue = ResultQueue(self.clock, batch_frames=64)
        transport = FakeTransport()
        queue.attach(transport.send)
        for frame in frames(20):
            queue.add(frame)
        room = queue.wait_for_room(10)
        self.assertNoResult(room)
        self.clock.advance(0)
        self.successResultOf(room)
        self.assertEqual(transport.frames, frames(20))

    def test_flush_waits_then_fires(self) -> None:
        """
        ``flush`` fires once every waiting batch is sent.
        """
        for frame in frames(4):
            self.queue.add(frame)
        flushed = self.queue.flush(timeout=1)
        self.assertNoResult(flushed)
        self.transport.room = 5
        self.clock.advance(RETRY_INTERVAL)
        self.successResultOf(flushed)
        self.assertEqual(self.queue.dropped, 0)

    def test_flush_timeout_drops_and_counts(self) -> None:
        """
        A flush that times out gives up on what still waits, counts it in
        ``dropped``, and releases every room waiter.
        """
        for frame in frames(6):
            self.queue.add(frame)
        room = self.queue.wait_for_room(1)
        flushed = self.queue.flush(timeout=1)
        self.clock.advance(1)
        self.successResultOf(flushed)
        self.successResultOf(room)
        self.assertEqual((self.queue.sent, self.queue.dropped, self.queue.pending()), (2, 4, 0))
        self.transport.room = 10
        self.clock.advance(1)
        self.assertEqual(self.transport.frames, frames(2), "dropped frames were sent after all")

    def test_discard_counts_batch_and_queue(self) -> None:
        """
        ``discard`` drops the batch being made and every waiting one, and
        counts them all.
        """
        for frame in frames(5):
            self.queue.add(frame)
        self.assertEqual(self.queue.discard(), 3)
        self.assertEqual((self.queue.pending(), self.queue.dropped), (0, 3))
        self.clock.advance(1)
        self.assertEqual(self.transport.frames, frames(2))


class LinkCopyTests(SynchronousTestCase):
    """
    The HQ link's ``frames_sent`` (what the composition root connects to
    the results file), on a link that is not started: no socket, the
    batches wait in its queue.
    """

    def setUp(self) -> None:
        from octtwisted._hq.link import HQLink

        self.clock = Clock()
        self.copied: list[list[bytes]] = []
        self.link = HQLink(
            order_address="tcp://127.0.0.1:9",
            result_address="tcp://127.0.0.1:9",
            uuid="t",
            reactor=self.clock,
            linger=0,
            frames_sent=self.copied.append,
        )

    def result(self, n: int) -> Result:
        return Result("t", float(n), 1.0, 0.1, "", {})

    def test_run_edges(self) -> None:
        """
        A run's frames still in this turn's batch are handed over when the
        run ends (before the turret closes the run and its file), and those
        queued before a run starts are handed over at its start (so they
        are not taken for the run's); a status is never handed over; every
        frame once.
        """
        self.link.send_result(self.result(0))
        self.link.run_started()
        self.assertEqual(self.copied, [[encode_result(self.result(0))]])
        self.link.send_result(self.result(1))
        self.clock.advance(0)
        self.link.send_result(self.result(2))
        self.link.send_status(StatusReport("t", "Killed", "t", 0.0, "s.py", 1))
        self.link.run_ended()
        self.assertEqual(self.copied[1:], [[encode_result(self.result(n))] for n in (1, 2)])
        self.clock.advance(0)
        self.assertEqual(len(self.copied), 3, "copied again when the batch left")
