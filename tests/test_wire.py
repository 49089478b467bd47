"""
Tests for :mod:`octtwisted._hq.wire`: the bytes the real OCT HQ sends and reads.
"""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from octtwisted._core.messages import Order, Result, StatusReport
from octtwisted._hq.wire import (
    BadOrder,
    decode_order,
    encode_order,
    encode_result,
    encode_status,
    is_status_frame,
)


class DecodeOrderTests(SynchronousTestCase):
    def test_broadcast_single_frame(self) -> None:
        """
        The HQ's broadcast, one frame starting with a space, is read.
        """
        order = decode_order([b' {"command": "start", "msg": "open fire"}'])
        self.assertEqual(order, Order("start", "open fire", ""))

    def test_addressed_single_frame(self) -> None:
        """
        An order addressed to a uuid carries the uuid as its topic.
        """
        order = decode_order([b'd7b8-36 {"command": "status_request", "msg": null}'])
        self.assertEqual(order, Order("status_request", None, "d7b8-36"))

    def test_two_frames(self) -> None:
        """
        A two-frame ``[topic, json]`` message is read too.
        """
        order = decode_order([b"abc", b'{"command": "stop", "msg": "premature stop"}'])
        self.assertEqual(order, Order("stop", "premature stop", "abc"))

    def test_bad_orders(self) -> None:
        """
        Everything that is not an order raises BadOrder with a reason.
        """
        cases = {
            b"nospace": "no space",
            b" not json": "not JSON",
            b" [1, 2]": "not an object",
            b' {"msg": 1}': "no 'command'",
            b' {"command": 3}': "no 'command'",
            b' {"command": "dance"}': "unknown command",
            b"\xff\xfe {}": "not UTF-8",
            b' {"command": "set_transaction_context", "msg": [1]}': "needs an object",
            b' {"command": "start", "msg": 5}': "needs a string",
            b' {"command": "stop", "msg": {}}': "needs a string",
        }
        for frame, reason in cases.items():
            with self.assertRaises(BadOrder) as caught:
                decode_order([frame])
            self.assertIn(reason, str(caught.exception))
        with self.assertRaises(BadOrder):
            decode_order([])
        with self.assertRaises(BadOrder):
            decode_order([b"a", b"b", b"c"])

    @given(st.lists(st.binary(max_size=200), max_size=4))
    def test_fuzz(self, frames: list[bytes]) -> None:
        """
        Any frames give an Order or BadOrder, never another exception.
        """
        try:
            decode_order(frames)
        except BadOrder:
            pass

    def test_deeply_nested_json(self) -> None:
        """
        JSON nested past what the decoder can follow (arrays, objects, as
        the body of one frame or of two, broadcast or addressed, inside
        a ``msg``) is a BadOrder, not a RecursionError; so is a number with
        more digits than Python converts.
        """
        deep = [
            b" " + b"[" * 100_000,
            b" " + b'{"a":' * 100_000,
            b" " + b"[" * 100_000 + b"]" * 100_000,
            b'uuid-1 {"command": "set_transaction_context", "msg": ' + b'{"a":' * 50_000,
        ]
        for frame in deep:
            with self.assertRaises(BadOrder) as caught:
                decode_order([frame])
            self.assertIn("nested too deeply", str(caught.exception))
        with self.assertRaises(BadOrder):
            decode_order([b"", b"[" * 100_000])
        with self.assertRaises(BadOrder) as caught:
            decode_order([b' {"command": "start", "msg": ' + b"9" * 5000 + b"}"])
        self.assertIn("not JSON", str(caught.exception))
        self.assertLess(len(str(caught.exception)), 300)

    @given(
        st.binary(max_size=20),
        st.lists(st.sampled_from([b"[", b"{", b'{"a":', b'[{"b":', b" ", b"1,", b'"']), min_size=1, max_size=5),
        st.integers(0, 60_000),
        st.binary(max_size=20),
    )
    def test_fuzz_nesting(self, head: bytes, unit: list[bytes], depth: int, tail: bytes) -> None:
        """
        Frames made of a topic, a pattern repeated up to 60,000 times (deep
        nesting) and junk give an Order or BadOrder, never another exception.
        """
        body = b"".join(unit) * depth
        for frames in ([head + b" " + body + tail], [head, body + tail]):
            try:
                decode_order(frames)
            except BadOrder:
                pass

    def test_round_trip(self) -> None:
        """
        What ``encode_order`` writes (as the HQ does) decodes to the same order.
        """
        for order in [Order("start", "open fire"), Order("kill", None, "u-1"), Order("set_transaction_context", {"a": 1})]:
            self.assertEqual(decode_order([encode_order(order)]), order)
        self.assertEqual(encode_order(Order("stop", "x")), b' {"command": "stop", "msg": "x"}')


class EncodeTests(SynchronousTestCase):
    def test_result_frame_begins_with_turret_name(self) -> None:
        """
        Every result frame begins with ``{"turret_name":`` and has no raw
        newline, with either encoder: the results file splits runs of
        frames at ``}{"turret_name":``, and reads ``epoch`` right after
        the name (``_stats/framewriter.py``).
        """
        for result in [
            Result("t", 1.0, 2.0, 0.5, "", {}),
            Result('a "name" \n status', 1.0, 2.0, 0.5, "line\nbreak", {"x": 1.0}),
            Result("t", 1.0, 2.0, 0.5, "bad \udcff byte", {}),
        ]:
            frame = encode_result(result)
            self.assertTrue(frame.startswith(b'{"turret_name":"'), frame)
            self.assertIn(b'","epoch":', frame)
            self.assertNotIn(b"\n", frame)

    def test_result_with_lone_surrogate(self) -> None:
        """
        Text orjson refuses (a lone surrogate) is still encoded.
        """
        result = Result("t", 1.0, 2.0, 0.5, "bad \udcff byte", {"\ud800": 1.0})
        self.assertEqual(json.loads(encode_result(result)), result.to_dict())

    def test_status(self) -> None:
        """
        A status message is JSON with numbers as numbers, and the HQ files
        it as a status.
        """
        frame = encode_status(StatusReport("nav", "ready", "u", 30.0, "s.py", 250))
        self.assertTrue(is_status_frame(frame))
        data = json.loads(frame)
        self.assertEqual(data["rampup"], 30)
        self.assertIsInstance(data["rampup"], int)
        self.assertEqual(data["cannons"], 250)
        self.assertEqual(data["turret"], "nav")

    @given(
        error=st.text(max_size=40),
        timers=st.dictionaries(st.text(max_size=20), st.floats(0, 1e6), max_size=4),
    )
    def test_result_never_says_status(self, error: str, timers: dict[str, float]) -> None:
        """
        Whatever the error text and timer names (``status`` included), a
        result frame never contains ``status`` and decodes to the same values.
        """
        error = "status " + error + "status"
        timers = {**timers, "status": 1.0, "\\status": 2.0}
        result = Result("t", 1.0, 2.0, 0.5, error, timers)
        frame = encode_result(result)
        self.assertFalse(is_status_frame(frame))
        self.assertEqual(json.loads(frame), result.to_dict())
