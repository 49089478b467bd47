"""
Tests for the fast client's direct socket writer (``_http/fast/sockwrite``).
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ClientFactory, Factory, Protocol
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from octtwisted._http.fast.sockwrite import socket_writer


class _FakeSocket:
    def __init__(self, takes: list[Any]) -> None:
        #: What each send does: a number of bytes taken, or an exception.
        self.takes = takes
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> int:
        take = self.takes.pop(0)
        if isinstance(take, Exception):
            raise take
        self.sent.append(data[:take])
        return int(take)


class _FakeTransport:
    def __init__(self, sock: _FakeSocket) -> None:
        self.sock = sock
        self.buffered: list[bytes] = []
        self.disconnecting = False

    def getHandle(self) -> _FakeSocket:
        return self.sock

    def write(self, data: bytes) -> None:
        self.buffered.append(data)


class SocketWriterTests(unittest.TestCase):
    def test_whole_send_bypasses_the_buffer(self) -> None:
        """
        Bytes the socket takes at once never reach the transport's buffer.
        """
        transport = _FakeTransport(_FakeSocket([5, 3]))
        write = socket_writer(transport)
        write(b"hello")
        write(b"abc")
        self.assertEqual(transport.sock.sent, [b"hello", b"abc"])
        self.assertEqual(transport.buffered, [])

    def test_partial_send_buffers_the_rest_and_from_then_on(self) -> None:
        """
        When the socket takes only part, the rest goes to the transport's
        buffer, and so does every later write (keeping the bytes' order).
        """
        transport = _FakeTransport(_FakeSocket([2]))
        write = socket_writer(transport)
        write(b"hello")
        write(b"next")
        self.assertEqual(transport.sock.sent, [b"he"])
        self.assertEqual(transport.buffered, [b"llo", b"next"])

    def test_would_block_buffers_everything(self) -> None:
        """
        A full send buffer (``EAGAIN``) leaves the whole write to Twisted.
        """
        transport = _FakeTransport(_FakeSocket([BlockingIOError()]))
        write = socket_writer(transport)
        write(b"hello")
        self.assertEqual(transport.buffered, [b"hello"])

    def test_socket_error_is_left_to_twisted(self) -> None:
        """
        A broken socket's error is not raised to the caller: the bytes go
        to Twisted, which finds the broken connection and reports it.
        """
        transport = _FakeTransport(_FakeSocket([ConnectionResetError()]))
        write = socket_writer(transport)
        write(b"hello")
        self.assertEqual(transport.buffered, [b"hello"])

    def test_disconnecting_transport_gets_the_write(self) -> None:
        """
        After ``loseConnection`` the socket is not written behind Twisted's
        back: the transport decides what to do with the bytes.
        """
        transport = _FakeTransport(_FakeSocket([]))
        transport.disconnecting = True
        write = socket_writer(transport)
        write(b"late")
        self.assertEqual(transport.buffered, [b"late"])

    def test_transport_without_socket(self) -> None:
        """
        An in-memory transport's own ``write`` is the writer.
        """
        transport = StringTransport()
        write = socket_writer(transport)
        write(b"x")
        self.assertEqual(transport.value(), b"x")


class _Collect(Protocol):
    def __init__(self, want: int, done: Deferred[bytes]) -> None:
        self.want = want
        self.done = done
        self.data = b""

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        if len(self.data) >= self.want and not self.done.called:
            self.done.callback(self.data)


class RealSocketTests(unittest.TestCase):
    def test_big_write_over_tcp_arrives_whole_and_in_order(self) -> None:
        """
        Over a real TCP connection, a write far bigger than the socket's
        send buffer and a small one after it arrive complete and in order.
        """
        big = bytes(range(256)) * 40_000  # 10 MB
        done: Deferred[bytes] = Deferred()
        factory = Factory.forProtocol(lambda: _Collect(len(big) + 4, done))
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(port.stopListening)

        class Sender(Protocol):
            def connectionMade(self) -> None:
                self.transport.getHandle().setsockopt(  # type: ignore[union-attr]
                    socket.SOL_SOCKET, socket.SO_SNDBUF, 65536
                )
                write = socket_writer(self.transport)
                write(big)
                write(b"tail")

        client = ClientFactory.forProtocol(Sender)
        connector = reactor.connectTCP("127.0.0.1", port.getHost().port, client)  # type: ignore[attr-defined]
        self.addCleanup(connector.disconnect)

        def check(data: bytes) -> None:
            self.assertEqual(len(data), len(big) + 4)
            self.assertTrue(data == big + b"tail")

        done.addTimeout(30, reactor)  # type: ignore[arg-type]
        return done.addCallback(check)
