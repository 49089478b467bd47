"""
Thresholds: parsing the config's expressions, and their verdict at the end
of a run.
"""

from __future__ import annotations

import json
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from octtwisted._core.config import ConfigError, load_config
from octtwisted._core.thresholds import (
    ThresholdError,
    evaluate,
    parse_threshold,
    parse_thresholds,
)
from octtwisted._stats.summary import RunStats
from tests.helpers import write_config
from tests.test_summary import record_all, result


class ParseTests(SynchronousTestCase):
    def test_forms(self) -> None:
        """
        pN, p(N) (k6's spelling), pN.N, med, avg, min/max/mean/count and
        rate parse into the statistic, comparison and limit; ms converts
        to seconds.
        """
        cases = {
            ("scriptrun_time", "p95 < 0.5"): ("p", 95.0, "<", 0.5),
            ("scriptrun_time", "p(99) <= 1500ms"): ("p", 99.0, "<=", 1.5),
            ("login", "p99.9>=0.2s"): ("p", 99.9, ">=", 0.2),
            ("login", "med < 0.1"): ("p", 50.0, "<", 0.1),
            ("login", "avg != 3"): ("mean", None, "!=", 3.0),
            ("login", "max == 1e-3"): ("max", None, "==", 0.001),
            ("errors", "rate < 0.01"): ("rate", None, "<", 0.01),
            ("transactions", "count > 200"): ("count", None, ">", 200.0),
        }
        for (metric, text), expected in cases.items():
            t = parse_threshold(metric, text)
            self.assertEqual((t.stat, t.percentile, t.op, t.limit), expected, text)
            self.assertEqual((t.metric, t.text), (metric, text))

    def test_bad_expressions(self) -> None:
        """
        Each bad expression raises ThresholdError with one line naming it.
        """
        bad = [
            ("scriptrun_time", "p95 <"),
            ("scriptrun_time", "p95 ~ 3"),
            ("scriptrun_time", "p101 < 3"),
            ("scriptrun_time", "p0 < 3"),
            ("scriptrun_time", "rate < 3"),
            ("scriptrun_time", "pxx < 3"),
            ("errors", "p95 < 0.1"),
            ("errors", "rate < 1ms"),
            ("transactions", "max > 3"),
            ("login", 0.5),
            ("login", "p95 < 0.5 or so"),
        ]
        for metric, text in bad:
            with self.assertRaises(ThresholdError, msg=repr(text)) as caught:
                parse_threshold(metric, text)
            message = str(caught.exception)
            self.assertNotIn("\n", message)
            self.assertIn(repr(metric), message)

    def test_object_shape(self) -> None:
        """
        The thresholds object maps names to lists (a lone string counts as
        a list of one); anything else is refused.
        """
        parsed = parse_thresholds({"errors": "rate < 0.1", "login": ["p90 < 1", "max < 2"]})
        self.assertEqual([t.text for t in parsed], ["rate < 0.1", "p90 < 1", "max < 2"])
        for raw in ([], {"login": []}, {"login": {"p90": 1}}, {"": ["p90 < 1"]}):
            self.assertRaises(ThresholdError, parse_thresholds, raw)

    def test_config_error(self) -> None:
        """
        A bad expression in config.json is a ConfigError naming the file and
        the key; good ones land in TurretConfig.thresholds.
        """
        folder = Path(self.mktemp())
        path = write_config(folder, thresholds={"scriptrun_time": ["p95 < oops"]})
        with self.assertRaises(ConfigError) as caught:
            load_config(path)
        self.assertIn(str(path.absolute()), str(caught.exception))
        self.assertIn("'thresholds'", str(caught.exception))
        path.write_text(json.dumps({**json.loads(path.read_text()),
                                    "thresholds": {"errors": ["rate < 0.5"]}}))
        self.assertEqual([t.text for t in load_config(path).thresholds], ["rate < 0.5"])


class EvaluateTests(SynchronousTestCase):
    def outcomes(self, raw: dict[str, list[str]]) -> list[tuple[str, float | None, bool]]:
        stats = RunStats()
        record_all(stats, (result(0.1, custom_timers={"login": 0.2}) for _ in range(90)))
        record_all(stats, (result(1.0, error="boom") for _ in range(10)))
        summary = stats.summary(duration=10.0, cannons=1, cannons_reached=1)
        found = evaluate(parse_thresholds(raw), stats, transactions=summary.transactions,
                         errors=summary.errors, duration=summary.duration)
        return [(o.expression, o.value, o.passed) for o in found]

    def test_measured_values(self) -> None:
        """
        Each outcome carries the measured value: percentiles of the run's
        histogram, the error share, transactions per second, a custom
        timer's statistic; pass/fail follows the comparison.
        """
        found = self.outcomes({
            "scriptrun_time": ["p50 < 0.2", "p95 < 0.5", "max <= 1"],
            "errors": ["rate < 0.05", "count == 10"],
            "transactions": ["rate > 5"],
            "login": ["p90 < 0.3", "count > 100"],
        })
        self.assertEqual(found[0][2], True)
        self.assertLess(abs(found[0][1] - 0.1), 0.001)
        self.assertEqual(found[1][2], False)
        self.assertLess(abs(found[1][1] - 1.0), 0.002)
        self.assertEqual(found[2], ("max <= 1", 1.0, True))
        self.assertEqual(found[3], ("rate < 0.05", 0.1, False))
        self.assertEqual(found[4], ("count == 10", 10.0, True))
        self.assertEqual(found[5], ("rate > 5", 10.0, True))
        self.assertEqual(found[6][2], True)
        self.assertLess(abs(found[6][1] - 0.2), 0.001)
        self.assertEqual(found[7], ("count > 100", 90.0, False))

    def test_missing_timer_fails(self) -> None:
        """
        A timer that never ran (a typo, say) fails its thresholds, with no
        value.
        """
        self.assertEqual(self.outcomes({"logn": ["p90 < 10"]}), [("p90 < 10", None, False)])
