"""
The options of the turret's ZeroMQ sockets: IPv6, and the ZMTP heartbeats
that notice a dead HQ machine.

A crashed HQ host, or a network that stops carrying packets, closes no TCP
connection: without heartbeats ZeroMQ would wait on it for ever (TCP
keepalive does not help: it only probes idle connections, and a connection
with results in flight is not idle). So both sockets ping the HQ every
``silence_timeout / 4`` seconds (ZMTP 3.1 ``PING``; the HQ's ZeroMQ answers
by itself, whatever its own settings and however busy its Python code), and
drop a connection on which nothing at all has arrived for
``silence_timeout`` seconds after a ping. A dead HQ is therefore noticed
within ``1.25 * silence_timeout`` (25 s with the default 20 s): the results
socket reports a disconnect, which starts the ``hq_lost_timeout`` watch;
ZeroMQ then tries to reconnect, as for an HQ that closed its sockets, and
gives up on a TCP connect or a ZMTP handshake that hangs for
``silence_timeout`` (so the turret finds the HQ again soon after the network
is back).
"""

from __future__ import annotations

import attrs
import zmq

#: ZeroMQ's own send queue of the results socket, in messages, before
#: ``zmq.Again``. A message is a batch of up to BATCH_FRAMES frames, so
#: ZeroMQ holds at most SEND_HWM * BATCH_FRAMES results (12,800); past that
#: they wait in our own queue, where they are counted, and the cannons are
#: held back.
SEND_HWM = 200

#: Seconds without any traffic from the HQ, after a ping, before its
#: connection is taken for dead (the config's ``hq_silence_timeout``).
DEFAULT_SILENCE_TIMEOUT = 20.0


@attrs.frozen
class SocketOptions:
    """
    :ivar send_hwm: the results socket's send high-water mark.
    :ivar ipv6: whether the sockets may use IPv6 (the HQ's address is an
        IPv6 one).
    :ivar silence_timeout: seconds, see the module's documentation; 0
        turns the heartbeats off.
    """

    send_hwm: int = SEND_HWM
    ipv6: bool = False
    silence_timeout: float = DEFAULT_SILENCE_TIMEOUT

    @property
    def ping_interval(self) -> float:
        """Seconds between two pings (0: no pings)."""
        return self.silence_timeout / 4

    @property
    def detection_bound(self) -> float:
        """The most seconds between the HQ's last byte and the disconnect."""
        return self.ping_interval + self.silence_timeout

    def apply(self, socket: zmq.Socket[bytes]) -> None:
        """
        Set the options on ``socket``, before it connects.
        """
        socket.set(zmq.IPV6, int(self.ipv6))
        if self.silence_timeout > 0:
            timeout = max(1, round(self.silence_timeout * 1000))
            socket.set(zmq.HEARTBEAT_IVL, max(1, round(self.ping_interval * 1000)))
            socket.set(zmq.HEARTBEAT_TIMEOUT, timeout)
            # Tells the HQ to drop us after that long without a word; our
            # pings come four times as often.
            socket.set(zmq.HEARTBEAT_TTL, max(100, min(timeout, 6_553_500)))
            # Once the HQ is back, a connection attempt or a handshake left
            # hanging by the dead network is given up as soon, and retried.
            socket.set(zmq.CONNECT_TIMEOUT, timeout)
            socket.set(zmq.HANDSHAKE_IVL, timeout)


#: The characters ZeroMQ takes in a ``tcp://`` address after its first one
#: (libzmq's ``socket_base_t::connect_internal``, 4.x).
_TCP_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-:%;[]_*"
)


def refused_address(address: str, ipv6: bool) -> str | None:
    """
    Why ZeroMQ would refuse to connect a socket to ``address``, or ``None``
    when it takes it; decided without a socket, so that nothing connects to
    the HQ before the turret is ready (a throwaway socket's connect starts
    a TCP connection at once).

    It is ZeroMQ's own check, done in Python: ``zmq_connect`` refuses a
    ``tcp://`` address with ``EINVAL`` ("Invalid argument") unless it
    starts with a letter, a digit, ``[`` or ``:``, holds only letters,
    digits and ``.-:%;[]_*`` after that, and ends in ``:`` and a port that
    starts with a digit; anything else about the address (a host that does
    not resolve, a closed port, IPv6 when ``ipv6`` is off) is found later,
    by its I/O thread, which retries. ``tests/test_deadhq.py`` checks the
    verdict against ZeroMQ's own on a table of addresses.
    """
    invalid = f"Invalid argument (addr={address!r})"
    scheme, separator, rest = address.partition("://")
    if not separator:
        return invalid
    if scheme != "tcp":
        return f"Protocol not supported (addr={address!r})"
    if not rest or not (rest[0].isascii() and (rest[0].isalnum() or rest[0] in "[:")):
        return invalid
    if any(c not in _TCP_CHARS for c in rest[1:]):
        return invalid
    _, colon, port = rest.rpartition(":")
    if not colon or not port[:1].isdigit():
        return invalid
    return None
