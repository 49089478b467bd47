"""
The OCT wire format: how orders, status and results become ZeroMQ frames.

This is the only module that knows the byte layout the real OCT HQ speaks
(see ``shared/oct-protocol.md``); :mod:`octtwisted._hq.link` uses it for the
real sockets, :mod:`octtwisted.testing` for the fake HQ.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import orjson

from octtwisted._core.messages import (
    COMMANDS,
    SET_TRANSACTION_CONTEXT,
    START,
    STOP,
    Order,
    Result,
    StatusReport,
)

#: The HQ files any frame whose raw bytes contain this as a status message.
STATUS_WORD = b"status"
_ESCAPED_STATUS_WORD = b"\\u0073tatus"

_encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False)



class BadOrder(ValueError):
    """
    A frame from the HQ that is not an order this turret understands.
    """


def decode_order(frames: Sequence[bytes]) -> Order:
    """
    Read one order from the frames of one ZeroMQ message.

    The real HQ sends one frame, ``b"<topic> <json>"`` (topic empty for a
    broadcast, so the frame starts with a space); a two-frame
    ``[topic, json]`` message is accepted too.

    :raise BadOrder: saying what is wrong with it; nothing else is raised,
        whatever the frames hold (deeply nested JSON included).
    """
    if len(frames) == 1:
        topic, sep, body = frames[0].partition(b" ")
        if not sep:
            raise BadOrder("frame has no space between topic and JSON")
    elif len(frames) == 2:
        topic, body = frames
    else:
        raise BadOrder(f"expected 1 or 2 frames, got {len(frames)}")
    try:
        topic_text = topic.decode("utf-8")
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadOrder("frame is not UTF-8")
    try:
        data = json.loads(text)
    except ValueError as e:
        # (Also a number past Python's digit limit.)
        raise BadOrder(f"body is not JSON ({_shorten(str(e), 200)})")
    except RecursionError:
        raise BadOrder("body is JSON nested too deeply to read")
    if not isinstance(data, dict):
        raise BadOrder(f"body is a JSON {type(data).__name__}, not an object")
    command = data.get("command")
    if not isinstance(command, str):
        raise BadOrder("no 'command' string")
    if command not in COMMANDS:
        raise BadOrder(f"unknown command {_shorten(command)!r}")
    msg = data.get("msg")
    if command == SET_TRANSACTION_CONTEXT and not isinstance(msg, dict):
        raise BadOrder(
            f"{SET_TRANSACTION_CONTEXT} needs an object as msg, "
            f"got {type(msg).__name__}"
        )
    if command in (START, STOP) and not (msg is None or isinstance(msg, str)):
        raise BadOrder(f"{command} needs a string as msg, got {type(msg).__name__}")
    return Order(command=command, msg=msg, topic=topic_text)


def encode_order(order: Order) -> bytes:
    """
    Encode an order exactly as the real HQ does: one frame,
    ``"<topic> <json>"``.
    """
    body = json.dumps({"command": order.command, "msg": order.msg})
    return f"{order.topic} {body}".encode("utf-8")


def encode_status(status: StatusReport) -> bytes:
    """
    Encode a status message (it must contain the word ``status``).
    """
    return _encoder.encode(status.to_dict()).encode("ascii")


def encode_result_dict(result: dict[str, Any]) -> bytes:
    """
    Encode a result as one compact JSON frame that never contains the
    substring ``status``.

    Outside strings JSON has only numbers, literals and punctuation, so any
    ``status`` in the text lies inside a string, where ``\\u0073tatus``
    decodes to the same characters.
    """
    try:
        data = orjson.dumps(result)
    except TypeError:
        # orjson refuses lone surrogates: the standard encoder escapes them.
        data = _encoder.encode(result).encode("ascii")
    if STATUS_WORD in data:
        data = data.replace(STATUS_WORD, _ESCAPED_STATUS_WORD)
    return data


def encode_result(result: Result) -> bytes:
    """
    Encode a :class:`Result`; see :func:`encode_result_dict`.
    """
    return encode_result_dict(result.to_dict())


def is_status_frame(data: bytes) -> bool:
    """
    Tell a status message from a result the way the real HQ does: by a
    substring test on the raw bytes.
    """
    return STATUS_WORD in data


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
