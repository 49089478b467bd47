"""
The conformance checks: each one's name, whether it is required, and the
protocol fact it proves (see ``docs/protocol.rst``), and the outcome of
one check and of a whole run.
"""

from __future__ import annotations

from typing import Any

import attrs

PASS = "PASS"
FAIL = "FAIL"
SKIP = "SKIP"


@attrs.frozen
class Check:
    """
    One check of the kit.

    :ivar name: short, stable, used on the command line and in test names.
    :ivar required: a turret that fails it does not work with the real HQ;
        a recommended one works, but badly.
    :ivar fact: the protocol fact the check proves.
    """

    name: str
    required: bool
    fact: str


CHECKS: tuple[Check, ...] = (
    Check(
        "announces-ready",
        True,
        "Unasked, the turret sends a status 'ready' with the six keys, cannons and rampup as JSON "
        "numbers, a uuid without spaces: the HQ counts turrets from the status messages it receives.",
    ),
    Check(
        "reads-config",
        True,
        "The status carries the config's name (as 'turret'), cannons and rampup, and the uuid the "
        "turret was given: the HQ shows and stores them.",
    ),
    Check(
        "status-request-broadcast",
        True,
        "A broadcast status_request (frame ' {json}') is answered within 1.5 s (answers coalesced "
        "within 1 s are fine): the HQ waits for answers before it starts the run.",
    ),
    Check(
        "status-request-addressed",
        True,
        "A status_request addressed to the turret's uuid (frame '<uuid> {json}') is answered: the "
        "turret subscribes to its uuid and strips the topic.",
    ),
    Check(
        "addressed-start",
        True,
        "A start addressed to another uuid is ignored; one addressed to this turret's uuid is obeyed.",
    ),
    Check(
        "status-storm",
        False,
        "The HQ re-publishes status_request after every message it receives: the turret coalesces "
        "its answers (at most 3 a second, plus 2) instead of answering each one.",
    ),
    Check(
        "two-frame-order",
        True,
        "A two-frame message on the orders socket does not harm the turret: it keeps answering.",
    ),
    Check(
        "garbage-orders",
        True,
        "Over 20 kinds of frames that are not orders (not UTF-8, not JSON, not an object, missing or "
        "wrong keys, unknown commands, 1 MiB, deep nesting, empty, multipart) are survived: the "
        "turret keeps answering, stays 'ready', and then obeys start.",
    ),
    Check(
        "set-transaction-context",
        True,
        "set_transaction_context with an object is accepted: the turret keeps answering and then "
        "obeys start. The HQ sends it before every start.",
    ),
    Check(
        "context-reaches-transaction",
        False,
        "The transaction context reaches the transactions (the kit's default script names its timer "
        "from it). Skipped with a script of your own.",
    ),
    Check(
        "start-running",
        True,
        "start ('open fire') gives a status 'Running' and results.",
    ),
    Check(
        "result-keys",
        True,
        "Every result has exactly turret_name, elapsed, epoch, scriptrun_time, error, custom_timers, "
        "with the right JSON types: the HQ stores each key in a column.",
    ),
    Check(
        "result-turret-name",
        True,
        "Every result's turret_name is the config's name: the HQ's report groups results by it.",
    ),
    Check(
        "result-epoch",
        True,
        "epoch is a float (a JSON number with a fraction) of Unix seconds, within 2 s of the time "
        "the result was received: the HQ stores it in a float column, and the report plots by it.",
    ),
    Check(
        "result-elapsed",
        True,
        "elapsed counts seconds since the turret started firing (within -0.5..+1.5 s of the time "
        "since the kit published start).",
    ),
    Check(
        "no-status-in-results",
        True,
        "No result frame contains the substring 'status' (the kit's scripts put it in a timer name "
        "and an error): the HQ files any frame containing it as a status message.",
    ),
    Check(
        "error-results",
        True,
        "A transaction that raises gives a result whose error holds the exception's text, and the "
        "cannons go on firing. Skipped when a script is given without --failing-script.",
    ),
    Check(
        "rampup-spread",
        True,
        "The cannons start over rampup seconds: results come in at under 60% of the full rate in "
        "the first quarter of the rampup.",
    ),
    Check(
        "stop-ready",
        True,
        "stop ('premature stop') ends the run and gives a status 'ready'.",
    ),
    Check(
        "no-results-after-stop",
        True,
        "No result arrives after the 'ready' that follows stop: the HQ unbinds its PULL socket right "
        "after stop, so late results are lost or reach the next run.",
    ),
    Check(
        "second-start",
        True,
        "After stop, a second start gives 'Running' and results again: one turret serves many runs.",
    ),
    Check(
        "kill-reports-killed",
        True,
        "kill gives a status 'Killed'.",
    ),
    Check(
        "kill-exits",
        True,
        "After kill the process exits.",
    ),
    Check(
        "sigterm-exits",
        True,
        "SIGTERM while firing ends the process within the bound.",
    ),
    Check(
        "status-keys",
        True,
        "Every status message has exactly the six keys turret, status, uuid, rampup, script, "
        "cannons: the HQ stores it with Turret.update(**message), which fails on any other key.",
    ),
    Check(
        "frames-are-json",
        True,
        "Every frame the turret sends is one JSON object: the HQ decodes each frame as JSON.",
    ),
)

CHECKS_BY_NAME: dict[str, Check] = {check.name: check for check in CHECKS}


def _rst_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace("`", "'").replace("*", "\\*")


def checks_rst_table() -> str:
    """
    Every check with its kind and the fact it proves, as a
    reStructuredText list-table (for the docs).
    """
    out = [
        ".. list-table:: The checks",
        "   :header-rows: 1",
        "   :widths: 24 12 64",
        "",
        "   * - check",
        "     - kind",
        "     - the protocol fact it proves",
    ]
    for check in CHECKS:
        out += [
            f"   * - ``{check.name}``",
            f"     - {'required' if check.required else 'recommended'}",
            f"     - {_rst_text(check.fact)}",
        ]
    return "\n".join(out) + "\n"


@attrs.frozen
class CheckResult:
    """
    The outcome of one check: ``PASS``, ``FAIL`` or ``SKIP``, and a
    one-line detail.
    """

    check: Check
    outcome: str
    detail: str

    @property
    def name(self) -> str:
        return self.check.name

    def line(self) -> str:
        """
        ``PASS|FAIL|SKIP name detail`` (the detail of a recommended check
        starts with ``(recommended)``).
        """
        kind = "" if self.check.required else "(recommended) "
        return f"{self.outcome} {self.check.name} {kind}{self.detail}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.check.name,
            "required": self.check.required,
            "outcome": self.outcome,
            "detail": self.detail,
            "fact": self.check.fact,
        }


@attrs.frozen
class Report:
    """
    The outcome of every check of one run of the kit, in :data:`CHECKS`
    order.
    """

    command: str
    results: tuple[CheckResult, ...]
    seconds: float

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def ok(self) -> bool:
        """
        True iff every required check passed.
        """
        return all(r.outcome == PASS for r in self.results if r.check.required)

    def outcome_of(self, name: str) -> CheckResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(name)

    def failed_names(self) -> set[str]:
        return {r.name for r in self.results if r.outcome == FAIL}

    def summary(self) -> str:
        return f"{self.count(PASS)} passed, {self.count(FAIL)} failed, {self.count(SKIP)} skipped"

    def lines(self) -> list[str]:
        return [r.line() for r in self.results] + [self.summary()]

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "ok": self.ok,
            "passed": self.count(PASS),
            "failed": self.count(FAIL),
            "skipped": self.count(SKIP),
            "seconds": round(self.seconds, 2),
            "checks": [r.to_dict() for r in self.results],
        }

    def rst_table(self, title: str) -> str:
        """
        The report as an reStructuredText list-table (for the docs).
        """
        out = [
            f".. list-table:: {title}",
            "   :header-rows: 1",
            "   :widths: 22 10 10 58",
            "",
            "   * - check",
            "     - kind",
            "     - outcome",
            "     - detail",
        ]
        for r in self.results:
            detail = _rst_text(r.detail)
            out += [
                f"   * - ``{r.name}``",
                f"     - {'required' if r.check.required else 'recommended'}",
                f"     - {r.outcome}",
                f"     - {detail}",
            ]
        out += ["", f"{self.summary()}.", ""]
        return "\n".join(out)
