"""
Per-request statistics, the clients' side: how a request of
``self.fast_http`` (a :class:`~octtwisted._http.fast.FastSession`) or of
``self.http`` (treq) is named, timed and handed to the run's table (a
:class:`RequestRecorder`: :class:`~octtwisted._stats.requests.RequestTable`,
which this layer does not import), and added to its transaction's
request timers for the HQ (:mod:`octtwisted._core.requesttimers`: they
reach the HQ in the result's ``custom_timers``).

A request's **name** is its ``name=`` argument or, by default,
``METHOD /path`` without the query string. Its **time** runs from the
call to the response (for ``self.fast_http``: the whole body read and its
redirects followed; for treq: the response's head, which is when treq's
Deferred fires). A failed request (no response, or a status >= 400) has a
**reason** (:func:`failure_reason`). Nothing is ever raised here into the
script: the request's result reaches the script unchanged.

What it costs a ``self.fast_http`` request: the name is cached with the
request's target; the request is a :class:`RecordedRequest` (the client
makes its recording's ``Request``) whose first callback counts it: two
clock reads and one :meth:`RequestRecorder.record_response` call (the
table's, compiled where it can be: a dict look-up by name and a few
additions), then the HQ's timer (one dict addition; the result carries
the request timers as they are, with no check).
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import urlsplit

from twisted.internet.defer import CancelledError, Deferred
from twisted.python import threadable
from twisted.python.failure import Failure

from octtwisted._core import logs
from octtwisted._core.byhand import RequestByHand
from octtwisted._core.requesttimers import add_request_timer
from octtwisted._http.fast.connection import Request
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

    def record_response(
        self, name: str, method: str, seconds: float, status: int, size: int
    ) -> str:
        """
        :meth:`record` for a response (no reason): the fast client's hot
        path (see ``RequestTable.record_response``).
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


class RecordedRequest(Request):
    """
    A ``self.fast_http`` request counted when it ends: before its first
    callback runs, it is counted under its name and its time added to its
    session's transaction (here rather than in a method of its recording:
    one call less on every request); a failure goes through
    :meth:`Recording.fast_failed`. No ``__slots__``: the attributes live in
    the instance's dict like :class:`Request`'s, which measured faster in a
    whole request loop (an in-process loop of ``FastSession.get`` against
    nginx, 50 sessions: slots added about 1 us per request on this
    machine).
    """

    recording: Recording
    name: str
    verb: str
    started: float

    def callback(self, result: Any) -> None:
        if not self.called:
            recording = self.recording
            try:
                if type(result) is Failure:
                    recording.fast_failed(result, self.name, self.verb, self.started, self.session)
                else:
                    seconds = recording.seconds() - self.started
                    name = recording.record_response(
                        self.name, self.verb, seconds, result.code, len(result.body)
                    )
                    session: Any = self.session  # a FastSession
                    if recording.timers and session is not None and session.owner is not None:
                        # add_request_timer, inline (the hot path)
                        owner = session.owner
                        try:
                            timers = owner._oct_request_timers
                        except AttributeError:  # its first
                            add_request_timer(owner, name, seconds)
                        else:
                            if timers is None:
                                owner._oct_request_timers = {name: seconds}
                            else:
                                timers[name] = timers.get(name, 0.0) + seconds
            except Exception:
                recording.broken()
        Deferred.callback(self, result)

    def errback(self, fail: Any = None) -> None:
        if not self.called:
            if not isinstance(fail, Failure):
                fail = Failure(fail)
            try:
                self.recording.fast_failed(fail, self.name, self.verb, self.started, self.session)
            except Exception:
                self.recording.broken()
        Deferred.errback(self, fail)


class Recording:
    """
    Records the requests of one run's clients into its table.

    :param clock: the reactor (its ``seconds``, and ``callFromThread``
        for :meth:`record_by_hand` from a blocking script's thread).
    :param recorder: the run's request table.
    :param timers: also add each request's time to its transaction's
        request timers under its name (the config's ``request_timers``).
    """

    log = logs.logger(logs.TURRET)

    #: what the fast client makes for a request it records
    Request = RecordedRequest

    def __init__(self, clock: Any, recorder: RequestRecorder, timers: bool = True) -> None:
        self.clock = clock
        self.seconds = clock.seconds
        self.record = recorder.record
        self.record_response = recorder.record_response
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

    def fast_failed(
        self, failure: Failure, name: str, method: str, started: float, session: Any
    ) -> Failure:
        """
        A ``self.fast_http`` request failed (before its first errback):
        count it with its reason, add its time to its session's
        transaction, return ``failure`` unchanged. (A response is counted
        by :meth:`RecordedRequest.callback` itself.)
        """
        seconds = self.seconds() - started
        name = self.record(name, method, seconds, 0, -1, failure_reason(failure.value))  # type: ignore[arg-type]
        if self.timers and session is not None:
            add_request_timer(session.owner, name, seconds)
        return failure

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
            add_request_timer(owner, name, seconds)


class RecordingTreq:
    """
    What ``self.http`` is when requests are recorded: the run's treq
    ``HTTPClient``, whose ``request`` (and ``get``, ``post``...) also take
    ``name=``, and count each request under its name. Anything else is the
    client's own.

    :param client: the run's treq ``HTTPClient``.
    :param recording: the run's :class:`Recording`.
    :param owner: the transaction whose request timers get the times.
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
                add_request_timer(self._owner, counted, seconds)
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
