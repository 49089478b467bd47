"""
The ``--report`` and ``--results`` options and the live line: their checks
at start, the settings :class:`~octtwisted._edge.options.Options` decides
from them, and the :class:`~octtwisted._stats.outputs.RunOutputs` that
``makeService`` makes of those settings.
"""

from __future__ import annotations

import sys
from pathlib import Path

from twisted.internet.interfaces import IReactorTime

from octtwisted._core.config import TurretConfig
from octtwisted._stats.outputs import OutputSettings, RunOutputs
from octtwisted._stats.results_file import results_format


def check_output_paths(report: str | None, results: str | None) -> str | None:
    """
    A one-line problem with the paths given, or None.
    """
    for option, value in (("--report", report), ("--results", results)):
        if value is None:
            continue
        path = Path(value)
        if not value or path.name in ("", ".", ".."):
            return f"{option} needs a file name, got {value!r}"
        if not path.absolute().parent.is_dir():
            return f"{option}: folder {str(path.absolute().parent)!r} does not exist"
        if path.is_dir():
            return f"{option}: {value!r} is a folder"
    if report is not None and Path(report).suffix.lower() not in (".html", ".htm"):
        return f"--report must name an .html file, got {report!r}"
    if results is not None and results_format(results) is None:
        return f"--results must end with .csv or .jsonl, got {results!r}"
    return None


def live_status_wanted(standalone: bool) -> bool:
    """
    A standalone run whose standard output is a terminal shows a live
    status line.
    """
    out = sys.__stdout__
    return standalone and out is not None and out.isatty()


def output_settings(
    *,
    report: str | None,
    results: str | None,
    standalone: bool,
    duration: float | None,
    version: str,
    results_parts: int = 0,
) -> OutputSettings:
    """
    The settings of the run outputs: a standalone run writes its files
    where they are named, from its results; a turret obeying an HQ makes
    many runs, names each run's files apart, and copies its results file
    from the frames it sends. With ``--processes``, the ``results_parts``
    worker processes write the results file's parts.
    """
    return OutputSettings(
        version=version,
        report=Path(report).absolute() if report else None,
        results=Path(results).absolute() if results else None,
        per_run_names=not standalone,
        duration=duration if standalone else None,
        mode="standalone" if standalone else "HQ",
        results_from_frames=not standalone,
        results_parts=results_parts,
    )


def make_outputs(
    *,
    config: TurretConfig,
    settings: OutputSettings,
    clock: IReactorTime,
    turret_id: str,
    live: bool,
) -> RunOutputs | None:
    """
    The run outputs the settings and config ask for, or None when there
    are none (no report, results, thresholds or live line).

    :param live: show the live status line.
    """
    from octtwisted._stats.live import LiveStatus

    if not (settings.report or settings.results or config.thresholds or live):
        return None
    status_line = None
    if live:
        assert sys.__stdout__ is not None
        status_line = LiveStatus(sys.__stdout__, settings.duration, config.cannons)
    return RunOutputs(
        config=config,
        settings=settings,
        clock=clock,
        turret_id=turret_id,
        status_line=status_line,
    )
