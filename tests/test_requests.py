"""
Per-request statistics: the table each request is counted in (figures,
cardinality guard, bounded reasons, exact merge of parts), how the
clients name and time requests (``self.fast_http``, its redirects,
``self.http``, ``record_request``), the custom timers they add for the
HQ, thresholds on a request name and the timeline's p95 per name.
"""

from __future__ import annotations

import json
import random
import threading
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import CancelledError
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import Request

import octtwisted
from octtwisted._core.messages import Result
from octtwisted._core.requesttimers import take_request_timers
from octtwisted._core.thresholds import ThresholdError, evaluate, parse_thresholds, request_name
from octtwisted._http.fast.errors import ConnectError, ResponseTimeout
from octtwisted._http.recording import (
    Recording,
    RecordingTreq,
    default_name,
    failure_reason,
)
from octtwisted._http.shared import SharedHTTPClient
from octtwisted._scripts.transaction import attach_clients
from octtwisted._stats.parts import Part
from octtwisted._stats.requests import (
    MAX_NAMES,
    MAX_REASON_LENGTH,
    MAX_REASONS,
    OTHER_NAMES,
    OTHER_REASONS,
    RequestTable,
    check_part,
)
from octtwisted._stats.summary import RunStats
from octtwisted._stats.timeline import Timeline
from octtwisted.testing import StubFastHTTP


class Owner:
    """A transaction's stand-in: what gets the request timers."""

    def __init__(self) -> None:
        self.custom_timers: dict[str, float] = {}


def request_timers(owner: Any) -> dict[str, float]:
    """
    The request timers ``owner`` holds (what its result will carry), and
    a check that its script's own ``custom_timers`` got none of them.
    """
    assert owner.custom_timers == {}, owner.custom_timers
    timers = take_request_timers(owner)
    return {} if timers is None else timers


def rows_of(table: RequestTable, seconds: float = 10.0) -> list[dict[str, Any]]:
    return [row.to_dict() for row in table.rows(seconds)]


class TableTests(SynchronousTestCase):
    def test_row_figures(self) -> None:
        """
        A name's row counts its requests, failures (status >= 400 as
        ``HTTP <status>``, or the reason given), statuses, the mean size of
        the responses whose size is known, the rate over the firing time,
        and its times: exact min, max and mean, percentiles within 0.4%.
        """
        table = RequestTable()
        for ms in range(1, 101):
            table.record("GET /a", "GET", ms / 1000, 200, 100)
        table.record("GET /a", "GET", 0.5, 503, 20)
        table.record("GET /a", "GET", 0.05, 0, -1, "ConnectError: connection refused")
        (row,) = table.rows(51.0)
        self.assertEqual((row.method, row.name, row.requests, row.failures), ("GET", "GET /a", 102, 2))
        self.assertEqual(row.requests_per_second, 2.0)
        self.assertEqual(row.statuses, ((200, 100), (503, 1)))
        self.assertEqual(row.average_bytes, (100 * 100 + 20) / 101)
        assert row.time is not None
        self.assertEqual((row.time.count, row.time.min, row.time.max), (102, 0.001, 0.5))
        self.assertAlmostEqual(row.time.mean, (5050 / 1000 + 0.55) / 102)
        self.assertLessEqual(abs(row.time.p50 - 0.050), 0.050 * 0.004)
        self.assertLessEqual(abs(row.time.p95 - 0.096), 0.096 * 0.004)
        failures = [(f.name, f.reason, f.count) for f in table.failure_rows()]
        self.assertEqual(
            sorted(failures),
            [("GET /a", "ConnectError: connection refused", 1), ("GET /a", "HTTP 503", 1)],
        )

    def test_methods_joined(self) -> None:
        """One name used with two methods shows both, joined by a comma."""
        table = RequestTable()
        table.record("login", "POST", 0.1, 200)
        table.record("login", "GET", 0.1, 200)
        self.assertEqual(table.rows(1.0)[0].method, "GET,POST")

    def test_cardinality_guard(self) -> None:
        """
        Past MAX_NAMES names, further names count under OTHER_NAMES, and
        the warning is given once, with the first name that did not fit.
        """
        warned: list[str] = []
        table = RequestTable(warn=warned.append)
        for i in range(MAX_NAMES + 50):
            table.record(f"GET /item/{i}", "GET", 0.01, 200)
            table.record(f"GET /item/{i}", "GET", 0.01, 200)
        rows = {row.name: row for row in table.rows(1.0)}
        self.assertEqual(len(rows), MAX_NAMES + 1)
        self.assertEqual(rows[OTHER_NAMES].requests, 100)
        self.assertEqual(warned, [f"GET /item/{MAX_NAMES}"])
        self.assertEqual(sum(row.requests for row in rows.values()), 2 * (MAX_NAMES + 50))

    def test_reasons_bounded(self) -> None:
        """
        A name keeps at most MAX_REASONS reasons (the rest under
        OTHER_REASONS), each on one line and at most MAX_REASON_LENGTH
        characters.
        """
        table = RequestTable()
        for i in range(MAX_REASONS + 10):
            table.record("x", "GET", 0.1, 0, -1, f"error {i}\nsecond line " + "z" * 300)
        rows = table.failure_rows()
        self.assertEqual(len(rows), MAX_REASONS + 1)
        other = [row for row in rows if row.reason == OTHER_REASONS]
        self.assertEqual(other[0].count, 10)
        for row in rows:
            self.assertLessEqual(len(row.reason), MAX_REASON_LENGTH)
            self.assertNotIn("\n", row.reason)


def feed(table: RequestTable, values: list[tuple[str, str, float, int, int, str | None]]) -> None:
    for name, method, seconds, status, size, reason in values:
        table.record(name, method, seconds, status, size, reason)


def random_requests(seed: int, n: int) -> list[tuple[str, str, float, int, int, str | None]]:
    rng = random.Random(seed)
    values = []
    for _ in range(n):
        name = rng.choice(["GET /a", "GET /b", "POST /c", "GET /d"])
        status = rng.choice([200, 200, 200, 404, 500, 0])
        reason = rng.choice(["ConnectError: connection refused", "timeout after 2 s"]) if not status else None
        values.append((name, name.split()[0], rng.lognormvariate(-4, 1.5), status,
                       rng.randrange(0, 5000) if status else -1, reason))
    return values


class MergeTests(SynchronousTestCase):
    def test_parts_merge_exactly(self) -> None:
        """
        Requests split across three tables, each taking several parts (sent
        as JSON), add up in a fourth to exactly the rows and failures of
        one table that recorded them all.
        """
        values = random_requests(7, 3000)
        whole = RequestTable()
        feed(whole, values)
        workers = [RequestTable() for _ in range(3)]
        merged = RequestTable()
        for start in range(0, len(values), 250):
            for i, value in enumerate(values[start:start + 250]):
                feed(workers[i % 3], [value])
            for worker in workers:
                merged.add_part(check_part(json.loads(json.dumps(worker.take_part()))))
        self.assertEqual(rows_of(merged), rows_of(whole))
        self.assertEqual(merged.failure_rows(), whole.failure_rows())

    def test_runstats_parts(self) -> None:
        """
        The request tables travel in RunStats' parts (Part.to_wire and
        from_wire): the parent's summary has the workers' rows exactly.
        """
        values = random_requests(3, 500)
        whole = RunStats()
        feed(whole.requests, values)
        parent = RunStats()
        workers = [RunStats(), RunStats()]
        for i, value in enumerate(values):
            feed(workers[i % 2].requests, [value])
            if i % 97 == 0:
                for worker in workers:
                    parent.add_part(Part.from_wire(json.loads(json.dumps(worker.take_part().to_wire()))))
        for worker in workers:
            parent.add_part(Part.from_wire(json.loads(json.dumps(worker.take_part().to_wire()))))
        ours = parent.summary(duration=5.0, cannons=1, cannons_reached=1)
        theirs = whole.summary(duration=5.0, cannons=1, cannons_reached=1)
        self.assertEqual(ours.requests, theirs.requests)
        self.assertEqual(ours.request_failures, theirs.request_failures)
        self.assertTrue(ours.requests)

    def test_guard_on_merged_table(self) -> None:
        """
        Two workers with 150 names each of their own: the merged table has
        MAX_NAMES names and OTHER_NAMES, every request counted.
        """
        merged = RequestTable()
        for worker_number in range(2):
            worker = RequestTable()
            for i in range(150):
                worker.record(f"w{worker_number} {i}", "GET", 0.01, 200)
            merged.add_part(worker.take_part())
        self.assertEqual(len(merged), MAX_NAMES + 1)
        self.assertEqual(sum(row.requests for row in merged.rows(1.0)), 300)
        self.assertEqual(merged.names[OTHER_NAMES].requests, 100)

    def test_malformed_part(self) -> None:
        """A malformed part's requests are refused with a one-line ValueError."""
        table = RequestTable()
        table.record("GET /a", "GET", 0.01, 200, 5)
        good = table.take_part()
        check_part(json.loads(json.dumps(good)))
        for change in (
            {"requests": -1}, {"failures": 5}, {"us": [3, 5]}, {"min_us": "1"},
            {"statuses": {"abc": 1}}, {"method": ""},
        ):
            bad = {"GET /a": {**good["GET /a"], **change}}
            with self.assertRaises(ValueError) as caught:
                check_part(bad)
            self.assertNotIn("\n", str(caught.exception))
        with self.assertRaises(ValueError):
            Part.from_wire({"transactions": 0, "errors": 0, "requests": {"x": {}}})


class Pages(Resource):
    """/item (200, 5 bytes), /fail (500), /redirect (-> /item)."""

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        if request.path == b"/fail":
            request.setResponseCode(500)
            return b"no"
        if request.path == b"/redirect":
            request.redirect(b"/item?from=redirect")
            return b""
        return b"items"


def stub_with(table: RequestTable, owner: Any, timers: bool = True) -> StubFastHTTP:
    stub = StubFastHTTP(Pages())
    stub.client.recording = Recording(stub.clock, table, timers)
    stub.owner = owner
    return stub


class FastNamingTests(SynchronousTestCase):
    def test_default_name_without_query(self) -> None:
        """
        Without ``name=``, a request is ``METHOD /path``: two queries of one
        path are one name.
        """
        table = RequestTable()
        stub = stub_with(table, Owner())
        self.successResultOf(stub.get("http://shop.test/item?id=7"))
        self.successResultOf(stub.get("http://shop.test/item?id=8"))
        rows = table.rows(1.0)
        self.assertEqual([(r.name, r.requests, r.statuses) for r in rows], [("GET /item", 2, ((200, 2),))])
        self.assertEqual(rows[0].average_bytes, 5.0)

    def test_name_argument(self) -> None:
        """``name=`` names the request, as in Locust."""
        table = RequestTable()
        stub = stub_with(table, Owner())
        self.successResultOf(stub.get("http://shop.test/item?id=7", name="item"))
        self.assertEqual([r.name for r in table.rows(1.0)], ["item"])

    def test_redirects_under_first_name(self) -> None:
        """
        A redirect is one request under the first request's name, with the
        final response's status; its hops are not counted.
        """
        table = RequestTable()
        stub = stub_with(table, Owner())
        response = self.successResultOf(stub.get("http://shop.test/redirect"))
        self.assertEqual(response.code, 200)
        self.assertEqual(
            [(r.name, r.requests, r.statuses) for r in table.rows(1.0)],
            [("GET /redirect", 1, ((200, 1),))],
        )

    def test_failed_status_and_timers(self) -> None:
        """
        A 500 is a failed request (``HTTP 500``), and the script still gets
        its response; each request's time goes to the owner's request
        timers under its name, summed when the name is used twice (its
        script's own ``custom_timers`` get nothing).
        """
        table = RequestTable()
        owner = Owner()
        stub = stub_with(table, owner)
        times = iter([0.0, 0.25, 1.0, 1.5, 2.0, 2.125])
        fake_clock = type("C", (), {"seconds": staticmethod(lambda: next(times))})()
        stub.client.recording = Recording(fake_clock, table)
        self.assertEqual(self.successResultOf(stub.get("http://shop.test/fail")).code, 500)
        self.successResultOf(stub.get("http://shop.test/item"))
        self.successResultOf(stub.get("http://shop.test/item?x=1"))
        self.assertEqual(request_timers(owner), {"GET /fail": 0.25, "GET /item": 0.625})
        self.assertEqual(
            [(f.name, f.reason, f.count) for f in table.failure_rows()], [("GET /fail", "HTTP 500", 1)]
        )

    def test_timers_off(self) -> None:
        """
        With ``request_timers`` false, the owner gets no request timers;
        the table still counts.
        """
        table = RequestTable()
        owner = Owner()
        stub = stub_with(table, owner, timers=False)
        self.successResultOf(stub.get("http://shop.test/item"))
        self.assertEqual(request_timers(owner), {})
        self.assertEqual(table.rows(1.0)[0].requests, 1)

    def test_transport_failure_reason(self) -> None:
        """
        A request that gets no response is counted as failed with its
        reason, and its error still reaches the script.
        """
        table = RequestTable()
        stub = stub_with(table, Owner())
        recording = stub.client.recording
        failure = Failure(ResponseTimeout(30.0))
        self.assertIs(recording.fast_failed(failure, "GET /slow", "GET", 0.0, None), failure)
        self.assertEqual(
            [(f.name, f.reason) for f in table.failure_rows()], [("GET /slow", "timeout after 30 s")]
        )


class ReasonTests(SynchronousTestCase):
    def test_reasons(self) -> None:
        """
        The reasons: timeouts with their seconds, the fast client's connect
        reason, a cancellation with a timeout as a timeout, else the
        exception's class name.
        """
        self.assertEqual(failure_reason(ResponseTimeout(30)), "timeout after 30 s")
        self.assertEqual(
            failure_reason(ConnectError("127.0.0.1:1", "connection refused")),
            "ConnectError: connection refused",
        )
        self.assertEqual(failure_reason(CancelledError(), 2.5), "timeout after 2.5 s")
        self.assertEqual(failure_reason(ConnectionRefusedError()), "ConnectionRefusedError")

    def test_default_name(self) -> None:
        """``METHOD /path``: no query, no fragment, ``/`` for an empty path."""
        self.assertEqual(default_name("GET", "http://a.test/x/y?q=1#f"), "GET /x/y")
        self.assertEqual(default_name("POST", "http://a.test"), "POST /")


class FakeResponse:
    code = 201
    length = 42
    body = b"fake"


class FakeTreq:
    def __init__(self, result: Any) -> None:
        self.result = result
        self.calls: list[tuple[Any, ...]] = []

    def request(self, method: Any, url: Any, **kw: Any) -> defer.Deferred[Any]:
        self.calls.append((method, url, kw))
        if isinstance(self.result, Exception):
            return defer.fail(self.result)
        return defer.succeed(self.result)


class TreqTests(SynchronousTestCase):
    def test_treq_counted(self) -> None:
        """
        ``self.http`` counts each request: default name without the query,
        ``name=`` not passed to treq, the size from the response's length,
        failures by their class name; the result is the script's unchanged.
        """
        table = RequestTable()
        owner = Owner()
        clock = Clock()
        fake = FakeTreq(FakeResponse())
        client = RecordingTreq(fake, Recording(clock, table), owner)
        self.assertIsInstance(self.successResultOf(client.get("http://a.test/p?x=1")), FakeResponse)
        self.successResultOf(client.post(b"http://a.test/p", data=b"x", name="posting"))
        self.assertEqual(fake.calls[1], ("POST", b"http://a.test/p", {"data": b"x"}))
        failing = RecordingTreq(FakeTreq(ConnectionRefusedError()), Recording(clock, table), owner)
        self.failureResultOf(failing.get("http://a.test/down"), ConnectionRefusedError)
        rows = {row.name: row for row in table.rows(1.0)}
        self.assertEqual(set(rows), {"GET /p", "posting", "GET /down"})
        self.assertEqual((rows["GET /p"].statuses, rows["GET /p"].average_bytes), (((201, 1),), 42.0))
        self.assertEqual(table.failure_rows()[0].reason, "ConnectionRefusedError")
        self.assertEqual(set(request_timers(owner)), {"GET /p", "posting", "GET /down"})


class ThreadClock(Clock):
    """A Clock that records what is handed to the reactor's thread."""

    def __init__(self) -> None:
        super().__init__()
        self.handed: list[tuple[Any, ...]] = []

    def callFromThread(self, f: Any, *args: Any) -> None:
        self.handed.append(args)
        f(*args)


def record_from_a_thread(case: SynchronousTestCase, transaction: Any, name: str, seconds: float) -> None:
    """
    ``transaction.record_request(name, seconds)`` from another thread than
    the reactor's (this test's thread plays the reactor's); it has ended.
    """
    from twisted.python import threadable

    thread = threading.Thread(target=transaction.record_request, args=(name, seconds))
    before = threadable.ioThread
    threadable.ioThread = threading.get_ident()
    try:
        thread.start()
        thread.join(30)
    finally:
        threadable.ioThread = before
    case.assertFalse(thread.is_alive())


class ByHandTests(SynchronousTestCase):
    def test_record_request(self) -> None:
        """
        ``record_request`` counts a request of another client, with its
        status, size or error, and adds its time to the transaction's
        request timers; without a run it does nothing.
        """
        table = RequestTable()
        shared = SharedHTTPClient(Clock(), 1, recording=Recording(Clock(), table))
        transaction = octtwisted.Transaction({}, {})
        octtwisted.record_request(transaction, "nothing", 1.0)  # not firing: ignored
        attach_clients(transaction, shared)
        transaction.record_request("GET /home", 0.2, status=200, size=10)
        octtwisted.record_request(transaction, "GET /home", 0.3, status=503)
        octtwisted.record_request(transaction, "db", 0.1, method="SQL", error=TimeoutError())
        rows = {row.name: row for row in table.rows(1.0)}
        self.assertEqual((rows["GET /home"].requests, rows["GET /home"].failures), (2, 1))
        self.assertEqual(rows["db"].method, "SQL")
        self.assertEqual(
            sorted((f.name, f.reason) for f in table.failure_rows()),
            [("GET /home", "HTTP 503"), ("db", "TimeoutError")],
        )
        self.assertEqual(request_timers(transaction), {"GET /home": 0.5, "db": 0.1})
        self.assertNotIn("nothing", rows)

    def test_time_must_be_a_measurement(self) -> None:
        """
        A time that is not one (negative, NaN, infinite) is refused at the
        call with a ValueError naming it, and nothing is counted: it never
        reaches the table as a made-up figure.
        """
        table = RequestTable()
        shared = SharedHTTPClient(Clock(), 1, recording=Recording(Clock(), table))
        transaction = octtwisted.Transaction({}, {})
        attach_clients(transaction, shared)
        for bad in (-0.5, float("nan"), float("inf")):
            error = self.assertRaises(ValueError, transaction.record_request, "GET /x", bad)
            self.assertIn("finite number of seconds", str(error))
        self.assertEqual(table.rows(1.0), ())
        self.assertEqual(request_timers(transaction), {})
        transaction.record_request("GET /x", 0.0)
        self.assertEqual(table.rows(1.0)[0].requests, 1)

    def test_from_a_thread(self) -> None:
        """
        From a blocking script's thread, the count is handed to the
        reactor's thread (callFromThread); the timer goes to the
        transaction at once.
        """
        table = RequestTable()
        clock = ThreadClock()
        shared = SharedHTTPClient(clock, 1, recording=Recording(clock, table))
        transaction = octtwisted.Transaction({}, {})
        attach_clients(transaction, shared)
        record_from_a_thread(self, transaction, "GET /x", 0.5)
        self.assertEqual(len(clock.handed), 1)
        self.assertEqual(table.rows(1.0)[0].requests, 1)
        self.assertEqual(request_timers(transaction), {"GET /x": 0.5})


class ThresholdTests(SynchronousTestCase):
    def test_parse(self) -> None:
        """
        ``requests{name:NAME}`` takes the timer statistics and count, rate,
        failures, fail_rate; units only on times; the name is kept as
        written (spaces included).
        """
        parsed = parse_thresholds({"requests{name:GET /home}": ["p95 < 200ms", "fail_rate < 0.01"]})
        self.assertEqual([(t.stat, t.percentile, t.limit) for t in parsed],
                         [("p", 95.0, 0.2), ("fail_rate", None, 0.01)])
        self.assertEqual(request_name(parsed[0].metric), "GET /home")
        self.assertIsNone(request_name("login"))
        for bad in ("fail_rate < 1ms", "median < 2", "failures < 2s"):
            with self.assertRaises(ThresholdError):
                parse_thresholds({"requests{name:x}": [bad]})

    def test_evaluate(self) -> None:
        """
        A request name's thresholds are judged on its own requests; a name
        never seen fails, with a note naming those seen.
        """
        stats = RunStats()
        for i in range(99):
            stats.requests.record("GET /home", "GET", 0.1, 200)
        stats.requests.record("GET /home", "GET", 0.3, 500)
        thresholds = parse_thresholds({
            "requests{name:GET /home}": ["p95 < 200ms", "fail_rate < 0.02", "fail_rate < 0.005",
                                        "count == 100", "rate > 9"],
            "requests{name:GET /nope}": ["p95 < 1s"],
        })
        outcomes = evaluate(thresholds, stats, transactions=0, errors=0, duration=10.0)
        self.assertEqual([o.passed for o in outcomes], [True, True, False, True, True, False])
        self.assertEqual(outcomes[2].value, 0.01)
        self.assertIn("no request named 'GET /nope'", outcomes[5].note)
        self.assertIn("'GET /home'", outcomes[5].note)


class TimelineTests(SynchronousTestCase):
    def test_p95_per_name(self) -> None:
        """
        The timeline's ``requests`` has, for the busiest names (at most 5),
        the p95 of each point, aligned with ``end`` (None where a point
        had no request of the name).
        """
        clock = Clock()
        stats = RunStats()
        timeline = Timeline(clock, stats, lambda: 1)
        timeline.start()
        for i in range(7):
            for _ in range(10 - i):
                stats.requests.record(f"n{i}", "GET", 0.010, 200)
        clock.advance(1.0)
        stats.requests.record("n0", "GET", 0.020, 200)
        clock.advance(1.0)
        clock.advance(1.0)
        timeline.stop()
        data = timeline.to_dict()
        self.assertEqual(sorted(data["requests"]), ["n0", "n1", "n2", "n3", "n4"])
        p95 = data["requests"]["n0"]["p95"]
        self.assertEqual(len(p95), len(data["end"]))
        self.assertLessEqual(abs(p95[0] - 0.010), 0.010 * 0.004)
        self.assertLessEqual(abs(p95[1] - 0.020), 0.020 * 0.004)
        self.assertIsNone(p95[2])


class RunStatsTests(SynchronousTestCase):
    def test_request_timers_left_out_of_custom_timers(self) -> None:
        """
        A result's request timers (for the HQ) are not counted as custom
        timers: the request table has them. The script's own timers are,
        even one named like a request (it is the script's, not the
        request's).
        """
        stats = RunStats()
        stats.requests.record("GET /x", "GET", 0.1, 200)
        stats.record(Result("t", 1.0, 0.0, 0.3, "", {"mine": 0.2, "GET /x": 0.05},
                            request_timers={"GET /x": 0.1}))
        summary = stats.summary(duration=1.0, cannons=1, cannons_reached=1)
        self.assertEqual(sorted(summary.custom_timers), ["GET /x", "mine"])
        self.assertEqual(summary.custom_timers["GET /x"].count, 1)
        self.assertEqual([row.name for row in summary.requests], ["GET /x"])


class BrokenRecorder:
    def record(self, *args: Any) -> None:
        raise RuntimeError("a bug")

    record_response = record

    def admit(self, name: str) -> str:
        return name


class BrokenRecordingTests(SynchronousTestCase):
    def test_request_still_answers(self) -> None:
        """
        When counting a request fails (a bug), the script still gets its
        response, and the failure is logged once.
        """
        stub = StubFastHTTP(Pages())
        stub.client.recording = Recording(stub.clock, BrokenRecorder())
        self.assertEqual(self.successResultOf(stub.get("http://shop.test/item")).code, 200)
        self.assertEqual(self.successResultOf(stub.get("http://shop.test/item")).code, 200)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class GuardTimerTests(SynchronousTestCase):
    def test_hq_timer_follows_guard(self) -> None:
        """
        Past the cardinality guard, the timer added for the HQ is named
        ``(other names)`` too: the HQ never gets more names than the table.
        """
        table = RequestTable()
        for i in range(MAX_NAMES):
            table.record(f"n{i}", "GET", 0.01, 200)
        owner = Owner()
        session = type("S", (), {"owner": owner})()
        recording = Recording(Clock(), table)
        for name in ("GET /item/12345", "n3"):
            request = recording.Request(lambda d: None)
            request.recording, request.name, request.verb, request.started = recording, name, "GET", 0.0
            request.session = session
            request.callback(FakeResponse())
            self.assertIsInstance(self.successResultOf(request), FakeResponse)
        self.assertEqual(set(request_timers(owner)), {OTHER_NAMES, "n3"})


class HeldClock(Clock):
    """A Clock that keeps what is handed to the reactor's thread until :meth:`run_handed`."""

    def __init__(self) -> None:
        super().__init__()
        self.handed: list[tuple[Any, tuple[Any, ...]]] = []

    def callFromThread(self, f: Any, *args: Any) -> None:
        self.handed.append((f, args))

    def run_handed(self) -> None:
        handed, self.handed = self.handed, []
        for f, args in handed:
            f(*args)


class GuardFromThreadTests(SynchronousTestCase):
    def by_hand_from_thread(self, transaction: Any, name: str) -> None:
        """``transaction.record_request(name, 0.25)`` from another thread than the reactor's."""
        record_from_a_thread(self, transaction, name, 0.25)

    def test_hq_timer_follows_guard_from_a_thread(self) -> None:
        """
        A request counted by hand from a blocking script's thread past the
        cardinality guard: its HQ timer is named ``(other names)``, like
        the table's row (which the reactor's thread makes later); one
        already in the table keeps its name.
        """
        table = RequestTable()
        for i in range(MAX_NAMES):
            table.record(f"n{i}", "GET", 0.01, 200)
        clock = HeldClock()
        shared = SharedHTTPClient(clock, 1, recording=Recording(clock, table))
        transaction = octtwisted.Transaction({}, {})
        attach_clients(transaction, shared)
        self.by_hand_from_thread(transaction, "GET /item/12345")
        self.by_hand_from_thread(transaction, "n3")
        self.assertEqual(request_timers(transaction), {OTHER_NAMES: 0.25, "n3": 0.25})
        clock.run_handed()
        rows = {row.name: row.requests for row in table.rows(1.0)}
        self.assertEqual((rows[OTHER_NAMES], rows["n3"]), (1, 2))
        self.assertNotIn("GET /item/12345", rows)

    def test_thread_and_reactor_race_for_the_last_name(self) -> None:
        """
        With room for one more name: a name counted from a thread takes it
        at once (its count still to come on the reactor's thread), so a
        new name recorded on the reactor's thread in between goes to
        ``(other names)``; each timer is named as its table row, and the
        guard's warning comes once.
        """
        warned: list[str] = []
        table = RequestTable(warn=warned.append)
        for i in range(MAX_NAMES - 1):
            table.record(f"n{i}", "GET", 0.01, 200)
        clock = HeldClock()
        shared = SharedHTTPClient(clock, 1, recording=Recording(clock, table))
        first, second = octtwisted.Transaction({}, {}), octtwisted.Transaction({}, {})
        attach_clients(first, shared)
        attach_clients(second, shared)
        self.by_hand_from_thread(first, "from thread")
        self.assertEqual(table.record("on reactor", "GET", 0.01, 200), OTHER_NAMES)
        self.by_hand_from_thread(second, "another thread")
        clock.run_handed()
        self.assertEqual(request_timers(first), {"from thread": 0.25})
        self.assertEqual(request_timers(second), {OTHER_NAMES: 0.25})
        rows = {row.name: row.requests for row in table.rows(1.0)}
        self.assertEqual((rows["from thread"], rows[OTHER_NAMES]), (1, 2))
        self.assertEqual(len(rows), MAX_NAMES + 1)
        self.assertEqual(warned, ["on reactor"])


class UnknownSizeTests(SynchronousTestCase):
    def test_unsized_responses_have_no_average(self) -> None:
        """
        A name whose responses all came without a known size (treq's
        chunked ones: ``size=-1``) has no average size (None, shown as
        ``-`` / ``n/a``), never 0 bytes; once one is sized, the average
        is over the sized ones only.
        """
        table = RequestTable()
        table.record("GET /chunked", "GET", 0.01, status=200, size=-1)
        table.record("GET /chunked", "GET", 0.01, status=200, size=-1)
        (row,) = table.rows(1.0)
        self.assertIsNone(row.average_bytes)
        self.assertIsNone(row.to_dict()["average_bytes"])
        table.record("GET /chunked", "GET", 0.01, status=200, size=30)
        (row,) = table.rows(1.0)
        self.assertEqual(row.average_bytes, 30.0)
