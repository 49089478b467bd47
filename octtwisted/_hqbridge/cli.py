"""
``oct-hq``: the real OCT HQ, with oct's own command line.

    oct-hq new-project P | pack-turrets P | run P | results-to-csv R.sqlite R.csv | ...

It installs the bridges (:mod:`.bridges`), then calls oct's entry point
(``oct.utilities.commands:main``, what the ``oct`` command runs) with the
same arguments. What goes wrong before or around oct's work (oct or a
library missing, a project folder that does not exist, a bad
``config.json``, a port in use) is one line on standard error and exit
status 1 (2 when something is not installed), not a traceback.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any, Callable, Sequence

from octtwisted._hqbridge.bridges import install_all

#: What to install when oct or one of its libraries is missing.
INSTALL_HINT = "pip install 'oct-twisted[hq]'"


def _say(line: str) -> None:
    sys.stderr.write(f"oct-hq: {line}\n")
    sys.stderr.flush()


def _quiet_oct_warnings() -> None:
    # pandas warns about calls in oct's own lines (graphs.py groups by
    # pd.cut without observed=, ...): the user can do nothing about them.
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=r"oct(\.|$)")


def _load_oct() -> tuple[Callable[[], Any], tuple[type[BaseException], ...]]:
    """
    Install the bridges, then import oct's entry point.

    :return: oct's ``main`` and the errors that are a bad input or
        environment rather than a bug (oct's configuration error, an
        operating system error, a ZeroMQ error such as a port in use).
    """
    install_all()
    import zmq
    from oct.core.exceptions import OctConfigurationError
    from oct.utilities.commands import main as oct_main

    return oct_main, (OctConfigurationError, OSError, zmq.ZMQError)


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror and error.filename:
        return f"{error.strerror}: {error.filename}"
    text = str(error).strip() or type(error).__name__
    if type(error).__module__.startswith("zmq") and "in use" in text:
        text += " (is another HQ running? oct binds publish_port, rc_port and external_publisher of config.json)"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run oct's command line with ``argv`` (default: this process's
    arguments). :return: the exit status.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        oct_main, bad_input = _load_oct()
    except ImportError as error:
        missing = (error.name or str(error)).split(".")[0]
        _say(f"{missing} is not installed, and the real HQ needs it: {INSTALL_HINT}")
        return 2
    _quiet_oct_warnings()
    # oct's parser reads sys.argv, and calls itself "oct" in its messages.
    sys.argv = ["oct", *args]
    try:
        oct_main()
    except bad_input as error:
        _say(_describe(error))
        return 1
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    return 0
