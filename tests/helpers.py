"""
Shared helpers for the tests: turret configs on disk, the real
``twistd oct-turret`` process driven from a test, and
:class:`TurretTestCase`, which starts fake HQs and turret processes for a
test and stops them after it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import uuid as uuidlib
from pathlib import Path
from typing import Any, ClassVar, Sequence

from twisted.internet import defer, protocol, reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from octtwisted._core.deferreds import cancel_call, on_fired
from octtwisted.testing import FakeHQ

SCRIPTS = Path(__file__).parent / "scripts"
TWISTD = str(Path(sys.executable).parent / "twistd")


def write_config(folder: str | Path, script: str | None = "plain.py", **keys: Any) -> Path:
    """
    Write ``config.json`` and copy ``tests/scripts/<script>`` beside it.

    ``keys`` are put in the config as they are; a key set to ``None`` is
    left out.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if script is not None and (SCRIPTS / script).exists():
        shutil.copy(SCRIPTS / script, folder / script)
    config: dict[str, Any] = {
        "name": "test-turret",
        "cannons": 2,
        "rampup": 0,
        "script": script,
        "hq_address": "127.0.0.1",
        "hq_publisher": 5000,
        "hq_rc": 5001,
    }
    config.update(keys)
    config = {k: v for k, v in config.items() if v is not None}
    path = folder / "config.json"
    path.write_text(json.dumps(config))
    return path


class _Collector(protocol.ProcessProtocol):
    def __init__(self) -> None:
        self.output = bytearray()
        self.ended: Deferred[int | None] = Deferred()
        self.exit_code: int | None = None
        self.exit_signal: int | None = None
        #: (bytes awaited, fired with the time they came) for wait_output
        self.waiters: list[tuple[bytes, Deferred[float]]] = []

    def outReceived(self, data: bytes) -> None:
        self.output.extend(data)
        if self.waiters:
            for awaited, d in [w for w in self.waiters if w[0] in self.output]:
                self.waiters.remove((awaited, d))
                d.callback(reactor.seconds())

    errReceived = outReceived

    def processEnded(self, reason: Any) -> None:
        self.exit_code = reason.value.exitCode
        self.exit_signal = reason.value.signal
        waiters, self.waiters = self.waiters, []
        for awaited, d in waiters:
            d.errback(AssertionError(
                f"the turret ended (exit {self.exit_code}, signal {self.exit_signal}) before "
                f"{awaited.decode()!r}:\n{self.output.decode('utf-8', 'replace')}"
            ))
        self.ended.callback(self.exit_code)


class TurretProcess:
    """
    A real ``twistd -n oct-turret`` process.

    ``args`` come after ``oct-turret``; output (stdout and stderr) is
    collected in :attr:`output`. With ``use_pty``, the process runs in a
    pseudo-terminal (its standard output is a TTY). ``prefix`` runs it
    through another command first (e.g. ``tests/rlimited.py``, which sets
    resource limits and execs it: the process is then twistd itself).
    """

    def __init__(
        self,
        args: list[str],
        cwd: str | Path,
        turret_id: str | None = None,
        env: dict[str, str] | None = None,
        use_pty: bool = False,
        prefix: Sequence[str] = (),
    ) -> None:
        self.uuid = turret_id or str(uuidlib.uuid4())
        #: the folder it runs in
        self.folder = Path(cwd)
        self._collector = _Collector()
        argv = [*prefix, TWISTD, "-n", "--pidfile=", "--logfile=-", "oct-turret", *args]
        if "--uuid" not in args:
            argv += ["--uuid", self.uuid]
        env = dict(env if env is not None else os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        self.transport = reactor.spawnProcess(
            self._collector, argv[0], argv, env=env, path=str(cwd), usePTY=use_pty
        )

    @property
    def output(self) -> str:
        return self._collector.output.decode("utf-8", "replace")

    @property
    def exit_code(self) -> int | None:
        return self._collector.exit_code

    @property
    def running(self) -> bool:
        return not self._collector.ended.called

    def wait_output(self, text: str, timeout: float = 30.0) -> Deferred[float]:
        """
        Fires with the reactor's time once ``text`` is in the output (at
        once if it is already); fails, with the whole output, if the
        process ends first or after ``timeout`` seconds.
        """
        awaited = text.encode("utf-8")
        if awaited in self._collector.output:
            return defer.succeed(reactor.seconds())
        d: Deferred[float] = Deferred()
        if not self.running:
            d.errback(AssertionError(f"the turret ended before {text!r}:\n{self.output}"))
            return d
        waiter = (awaited, d)
        self._collector.waiters.append(waiter)

        def too_slow() -> None:
            if waiter in self._collector.waiters:
                self._collector.waiters.remove(waiter)
                d.errback(AssertionError(f"no {text!r} within {timeout}s:\n{self.output}"))

        call = reactor.callLater(timeout, too_slow)
        return on_fired(d, lambda: cancel_call(call))

    def wait_exit(self, timeout: float = 20.0) -> Deferred[int | None]:
        """
        Fires with the exit status when the process ends; after ``timeout``
        the process is killed and the Deferred fails.
        """
        if self._collector.ended.called:
            return defer.succeed(self._collector.exit_code)
        d: Deferred[int | None] = Deferred()

        def ended(code: int | None) -> int | None:
            if not d.called:
                d.callback(code)
            return code

        self._collector.ended.addCallback(ended)

        def too_slow() -> None:
            if not d.called:
                self.kill()
                d.errback(TimeoutError(f"turret did not exit in {timeout}s:\n{self.output}"))

        call = reactor.callLater(timeout, too_slow)
        on_fired(d, lambda: cancel_call(call))
        return d

    def signal(self, number: int) -> None:
        self.transport.signalProcess(number)

    def kill(self) -> None:
        if self.running:
            try:
                self.transport.signalProcess(signal.SIGKILL)
            except Exception:
                pass

    def cleanup(self) -> Deferred[Any]:
        """
        For ``addCleanup``: kill the process if it is still running and
        wait for it to end.
        """
        if not self.running:
            return defer.succeed(None)
        self.kill()
        return self._collector.ended


#: The config keys that point a turret at an HQ, left out of a standalone
#: turret's config.
NO_HQ = {"hq_address": None, "hq_publisher": None, "hq_rc": None}


class TurretTestCase(TestCase):
    """
    A test case that drives real turret processes: :meth:`start_hq`
    starts a :class:`FakeHQ`, :meth:`launch` a turret with a config of its
    own; both are stopped at the end of the test.

    :cvar turret_keys: the config keys of every turret the test case
        launches (the HQ's keys and those given to :meth:`launch` come
        after them).
    :cvar turret_script: the script they run unless told.
    :ivar hq: the test's HQ, which :meth:`launch` points turrets at unless
        told (a test case sets it in ``setUp``: ``self.hq =
        self.start_hq()``).
    """

    turret_keys: ClassVar[dict[str, Any]] = {}
    turret_script: ClassVar[str] = "deferred_sleep.py"
    hq: FakeHQ | None = None

    def start_hq(self, *, receive_hwm: int = 0, **ports: int) -> FakeHQ:
        """
        A FakeHQ, bound (``ports``: ``publisher_port``, ``rc_port``; free
        ones by default), closed at the end of the test.
        """
        hq = FakeHQ(receive_hwm=receive_hwm)
        hq.start(**ports)
        self.addCleanup(hq.stop)
        return hq

    def launch(
        self,
        script: str | None = None,
        *,
        hq: FakeHQ | None = None,
        standalone: bool = False,
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        use_pty: bool = False,
        prefix: Sequence[str] = (),
        **keys: Any,
    ) -> TurretProcess:
        """
        Write ``config.json`` and ``script`` (default :attr:`turret_script`)
        in a new folder and start ``twistd oct-turret -c config.json`` there,
        followed by ``args``; it is killed at the end of the test if it
        still runs.

        :param hq: the HQ the turret obeys (default :attr:`hq`).
        :param standalone: fire without an HQ: ``--standalone``, and no
            ``hq_*`` keys in the config.
        :param keys: more config keys (a key set to None is left out).
        """
        hq = hq if hq is not None else self.hq
        if standalone:
            keys = {**NO_HQ, **keys}
            args = ("--standalone", *args)
        elif hq is not None:
            keys = {**hq.turret_config(), **keys}
        folder = Path(self.mktemp()).absolute()
        config = write_config(folder, script=script or self.turret_script, **{**self.turret_keys, **keys})
        turret = TurretProcess(["-c", str(config), *args], cwd=folder, env=env, use_pty=use_pty, prefix=prefix)
        self.addCleanup(turret.cleanup)
        return turret


def serve_quietly(case: TestCase, resource: Any) -> str:
    """
    Serve ``resource`` (a ``twisted.web`` resource) on 127.0.0.1 for the
    test, without its access log; its base URL. Stopped at the test's end.
    """
    from twisted.web.server import Site

    site = Site(resource)
    site.noisy = False
    site.log = lambda request: None  # type: ignore[method-assign]
    port = reactor.listenTCP(0, site, interface="127.0.0.1")  # type: ignore[attr-defined]
    case.addCleanup(port.stopListening)
    return f"http://127.0.0.1:{port.getHost().port}"
