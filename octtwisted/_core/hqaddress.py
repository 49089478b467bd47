"""
The HQ's address (``hq_address``): a host name, an IPv4 or an IPv6
address, and how it goes into a ZeroMQ ``tcp://`` address.
"""

from __future__ import annotations

import ipaddress
import re

#: A host name as ZeroMQ takes it: labels of letters, digits, ``-`` and
#: ``_``, separated by dots.
_HOST_NAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?")


def ipv6(host: str | None) -> ipaddress.IPv6Address | None:
    """``host`` as an IPv6 address (brackets allowed), or ``None``."""
    if host is None:
        return None
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.IPv6Address(text)
    except ValueError:
        return None


def zmq_host(host: str | None) -> str:
    """The host part of a ``tcp://`` address: IPv6 goes in brackets."""
    address = ipv6(host)
    return f"[{address}]" if address is not None else str(host)


def is_hq_host(value: object) -> bool:
    """
    Whether ``value`` is a host name, an IPv4 address or an IPv6 address
    (maybe in brackets), with nothing around it: no scheme, no port, no
    spaces.
    """
    if not isinstance(value, str) or len(value) > 253:
        return False
    if ipv6(value) is not None:
        return True
    if _HOST_NAME.fullmatch(value) is None:
        return False
    if all(label.isdigit() for label in value.rstrip(".").split(".")):
        try:  # all digits: it must be an IPv4 address
            ipaddress.IPv4Address(value)
        except ValueError:
            return False
    return True


