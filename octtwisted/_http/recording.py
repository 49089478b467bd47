"""
Per-request statistics, the clients' side: how a request of
``self.fast_http`` (a :class:`~octtwisted._http.fast.FastSession`) or of
``self.http`` (treq) is named, timed and handed to the run's table (a
:class:`RequestRecorder`: :class:`~octtwisted._stats.requests.RequestTable`,
which this layer does not import), and added to its transaction's
``custom_timers`` for the HQ.

A request's **name** is its ``name=`` argument or, by default,
``METHOD /path`` without the query string. Its **time** runs from the
call to the response (for ``self.fast_http``: the whole body read and its
redirects followed; for treq: the response's head, which is when treq's
Deferred fires). A failed request (no response, or a status >= 400) has a
**reason** (:func:`failure_reason`). Nothing is ever raised here into the
script: the request's result reaches the script unchanged.

What it costs a ``self.fast_http`` request: the name is cached with the
request's target; the request is a ``RecordedRequest`` whose first
callback calls :meth:`Recording.fast_done`: two clock reads and one
:meth:`RequestRecorder.record` call (a dict look-up by name and a few
additions), then the HQ's timer.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import urlsplit

from twisted.internet.defer import CancelledError, Deferred
from twisted.python import threadable
from twisted.python.failure import Failure

from octtwisted._core import logs
from octtwisted._core.byhand import RequestByHand
from octtwisted._http.fast.errors import ConnectError, ResponseTimeout


class RequestRecorder(Protocol):
    """Where requests are counted (the run's request table)."""

    def record(
        self,
        name: str,
        method: str,
        seconds: float,
        status: int = 0,
        size: int = -1,
        reason: str | None = None,
    ) -> str:
        """
        Count one request (see ``RequestTable.record``); return the name it
        is counted under (the table's row for names past its guard).
        """

    def admit(self, name: str) -> str:
        """
        From any thread: the name a request named ``name`` will be counted
        under (see ``RequestTable.admit``), kept for it.
        """


def default_name(method: str, url: str) -> str:
    """
    ``METHOD /path``: the name of a request without ``name=`` (the query
    string and fragment left out, so ``/item?id=7`` and ``/item?id=8`` are
    one name).
    """
    try:
        path = urlsplit(url).path
    except ValueError:
        path = url.split("?", 1)[0]
    return f"{method} {path or '/'}"


def failure_reason(error: BaseException, timeout: float | None = None) -> str:
    """
    Why a request failed, in a few words: ``timeout after 30 s``, the
    fast client's connect reason (``ConnectError: connection refused``),
    else the exception's class name (``ConnectionRefusedError``,
    ``ResponseNeverReceived``...).

    :param timeout: the request's own timeout, when a cancellation (as
        treq's ``timeout=`` makes) means it ran out.
    """
    if isinstance(error, ResponseTimeout):
        return f"timeout after {error.timeout:g} s"
    if isinstance(error, CancelledError) and timeout is not None:
        return f"timeout after {timeout:g} s"
    if isinstance(error, ConnectError):
        return f"ConnectError: {error.reason}"
    reasons = getattr(error, "reasons", None)  # treq's ResponseNeverReceived, ...
    if isinstance(reasons, list) and reasons and isinstance(reasons[0], Failure):
        inner = reasons[0].value
        if isinstance(inner, BaseException):
            return f"{type(error).__name__}: {type(inner).__name__}"
    return type(error).__name__


class Recording:
    """
    Records the requests of one run's clients into its table.

    :param clock: the reactor (its ``seconds``, and ``callFromThread``
        for :meth:`record_by_hand` from a blocking script's thread).
    :param recorder: the run's request table.
    :param timers: also add each request's time to its transaction's
        ``custom_timers`` under its name (the config's
        ``request_timers``).
    """

    log = logs.logger(logs.TURRET)

    def __init__(self, clock: Any, recorder: RequestRecorder, timers: bool = True) -> None:
        self.clock = clock
        self.seconds = clock.seconds
        self.record = recorder.record
        self.admit = recorder.admit
        self.timers = timers
        self._broken = False

    def broken(self) -> None:
        """
        Counting a request failed (a bug): log it once per run; the
        request's result still reaches the script.
        """
        if not self._broken:
            self._broken = True
            self.log.failure("per-request statistics: a request could not be counted")

    def fast_done(
        self, result: Any, name: str, method: str, started: float, session: Any
    ) -> Any:
        """
        A ``self.fast_http`` request ended (before its first callback):
        count it, add its time to its session's transaction, pass
        ``result`` on unchanged.
        """
        seconds = self.seconds() - started
        if type(result) is Failure:
            name = self.record(name, method, seconds, 0, -1, failure_reason(result.value))  # type: ignore[arg-type]
        else:
            name = self.record(name, method, seconds, result.code, len(result.body))
        if self.timers and session is not None:
            timers = getattr(session.owner, "custom_timers", None)  # None without an owner
            if type(timers) is dict:
                timers[name] = timers.get(name, 0.0) + seconds
        return result

    def record_by_hand(self, owner: Any, request: RequestByHand) -> None:
        """
        What ``Transaction.record_request`` does: count one request made
        by another client, from the reactor's thread or a blocking
        script's (then handed to the reactor's thread).
        """
        name, seconds, method, error = request.name, request.seconds, request.method, request.error
        reason = None
        if error is not None:
            reason = error if isinstance(error, str) else failure_reason(error)
        code = 0 if request.status is None else int(request.status)
        length = -1 if request.size is None else int(request.size)
        if threadable.ioThread is not None and not threadable.isInIOThread():
            # The table is the reactor's: the count is handed to its thread,
            # and the timer takes the row the table keeps for the name
            # (admit reserves it), as the count will find it.
            counted = self.admit(name)
            self.clock.callFromThread(self.record, name, method, seconds, code, length, reason)
            name = counted
        else:
            name = self.record(name, method, seconds, code, length, reason)
        if self.timers:
            add_timer(owner, name, seconds)


def add_timer(owner: Any, name: str, seconds: float) -> None:
    """
    Add ``seconds`` to ``owner.custom_timers[name]`` (a name used twice in
    one transaction sums), when ``owner`` has such a dict.
    """
    timers = getattr(owner, "custom_timers", None)
    if type(timers) is dict:
        timers[name] = timers.get(name, 0.0) + seconds


class RecordingTreq:
    """
    What ``self.http`` is when requests are recorded: the run's treq
    ``HTTPClient``, whose ``request`` (and ``get``, ``post``...) also take
    ``name=``, and count each request under its name. Anything else is the
    client's own.

    :param client: the run's treq ``HTTPClient``.
    :param recording: the run's :class:`Recording`.
    :param owner: the transaction whose ``custom_timers`` get the times.
    """

    def __init__(self, client: Any, recording: Recording, owner: Any) -> None:
        self._client = client
        self._recording = recording
        self._owner = owner

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._client, attribute)

    def request(self, method: str | bytes, url: Any, *, name: str | None = None, **kw: Any) -> Deferred[Any]:
        """treq's ``HTTPClient.request``, counted under ``name``."""
        method_text = method.decode("ascii", "replace") if isinstance(method, bytes) else str(method)
        method_text = method_text.upper()
        if name is None:
            text = url.decode("utf-8", "replace") if isinstance(url, bytes) else str(url)
            name = default_name(method_text, text)
        recording = self._recording
        started = recording.clock.seconds()
        timeout = kw.get("timeout")
        d: Deferred[Any] = self._client.request(method, url, **kw)

        def done(result: Any) -> Any:
            seconds = recording.clock.seconds() - started
            if isinstance(result, Failure):
                counted = recording.record(name, method_text, seconds, 0, -1,
                                           failure_reason(result.value, timeout))  # type: ignore[arg-type]
            else:
                length = getattr(result, "length", None)
                size = length if type(length) is int else -1
                counted = recording.record(name, method_text, seconds, int(result.code), size, None)
            if recording.timers:
                add_timer(self._owner, counted, seconds)
            return result

        return d.addBoth(done)

    def get(self, url: Any, **kw: Any) -> Deferred[Any]:
        """``request("GET", url, **kw)``."""
        return self.request("GET", url, **kw)

    def head(self, url: Any, **kw: Any) -> Deferred[Any]:
        """``request("HEAD", url, **kw)``."""
        return self.request("HEAD", url, **kw)

    def post(self, url: Any, data: Any = None, **kw: Any) -> Deferred[Any]:
        """``request("POST", url, data=data, **kw)``."""
        return self.request("POST", url, data=data, **kw)

    def put(self, url: Any, data: Any = None, **kw: Any) -> Deferred[Any]:
        """``request("PUT", url, data=data, **kw)``."""
        return self.request("PUT", url, data=data, **kw)

    def patch(self, url: Any, data: Any = None, **kw: Any) -> Deferred[Any]:
        """``request("PATCH", url, data=data, **kw)``."""
        return self.request("PATCH", url, data=data, **kw)

    def delete(self, url: Any, **kw: Any) -> Deferred[Any]:
        """``request("DELETE", url, **kw)``."""
        return self.request("DELETE", url, **kw)
