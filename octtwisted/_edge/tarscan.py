"""
A bounded first look at a tar archive's headers, before :mod:`tarfile`.

``tarfile`` reads a pax extended header or a GNU long name whole, in one
``read``, whatever size its header claims: a 400 KB ``.tar.gz`` can make
it allocate and parse hundreds of megabytes before any check of ours sees a
member. :func:`scan_headers` walks the same headers ``tarfile`` will, with
reads of at most :data:`SCAN_CHUNK` bytes, and refuses the archive when an
extended header is larger than :data:`MAX_EXTENDED_HEADER`, when a member
has more than :data:`MAX_EXTENDED_CHAIN` of them, when a member is sparse,
or when there are too many members or too much data. It reads the archive
once, so its time is bounded by the size limits of the package.

It follows ``tarfile``'s own rules (:meth:`tarfile.TarInfo.frombuf` reads
each header; a pax ``size`` record moves the next header; data follows
regular files and unknown types only) through every decompression
``tarfile.open(..., "r:*")`` may pick, and stops where ``tarfile`` would
stop (a zero block, an invalid header, damaged data): what it does not see
``tarfile`` does not read either. Other problems are left to the member
checks that follow, so that they keep their own messages.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import re
import tarfile
import zlib
from typing import Callable

#: The largest pax extended header or GNU long name or link accepted.
MAX_EXTENDED_HEADER = 64 * 1024

#: The most extended headers (pax, GNU long name, GNU long link) that one
#: member may have.
MAX_EXTENDED_CHAIN = 3

#: The most bytes read at a time.
SCAN_CHUNK = 1024 * 1024

_BLOCK = tarfile.BLOCKSIZE
_PAX = (tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE)
_GNU_LONG = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
_RECORD = re.compile(rb"(\d+) ([^=]+)=")
_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError, ValueError)

_OPENERS: list[Callable[[str | os.PathLike[str]], io.BufferedIOBase]] = [
    lambda path: gzip.open(path, "rb"),
    lambda path: bz2.open(path, "rb"),
    lambda path: lzma.open(path, "rb"),
    lambda path: open(path, "rb"),
]


class Refused(Exception):
    """The archive is refused; ``str()`` says why, without the archive's name."""


def scan_headers(archive: str | os.PathLike[str], max_members: int, max_data: int) -> None:
    """
    :param max_members: the most members (extended headers not counted).
    :param max_data: the most bytes the members' data may add up to.
    :raise Refused: see the module's documentation.
    """
    for opener in _OPENERS:
        try:
            with opener(archive) as stream:
                _Scan(stream, max_members, max_data).run()
        except _ERRORS:
            continue  # tarfile stops here too, or refuses this reading


def _round_up(size: int) -> int:
    return -(-size // _BLOCK) * _BLOCK


def _pax_records(data: bytes) -> dict[bytes, bytes]:
    """The records of a pax header, parsed as ``tarfile`` does."""
    records: dict[bytes, bytes] = {}
    pos = 0
    while True:
        match = _RECORD.match(data, pos)
        if not match:
            return records
        length = int(match.group(1))
        if length == 0:
            raise tarfile.HeaderError("invalid pax record")  # tarfile stops here
        records[match.group(2)] = data[match.end(2) + 1 : match.start(1) + length - 1]
        pos += length


class _Scan:
    def __init__(self, stream: io.BufferedIOBase, max_members: int, max_data: int) -> None:
        self.stream = stream
        self.members_left = max_members
        self.data_left = self.max_data = max_data
        self.max_members = max_members
        self.number = 0

    def read(self, size: int) -> bytes:
        data = self.stream.read(size)
        if len(data) < size:
            raise EOFError("unexpected end of data")
        return data

    def skip(self, size: int) -> None:
        """Skip a member's data, with the limit on their total."""
        self.data_left -= size
        if self.data_left < 0:
            # The words of the member checks, which count the same bytes.
            raise Refused(f"its files add up to more than {self.max_data} bytes uncompressed")
        left = _round_up(size)
        while left > 0:
            left -= len(self.read(min(left, SCAN_CHUNK)))

    def run(self) -> None:
        while self.member():
            pass

    def member(self) -> bool:
        """Scan one member and its extended headers; False at the end."""
        size_record: bytes | None = None
        for _ in range(MAX_EXTENDED_CHAIN + 1):
            block = self.stream.read(_BLOCK)
            info = tarfile.TarInfo.frombuf(block, tarfile.ENCODING, "surrogateescape")
            self.number += 1
            if info.size < 0:
                raise Refused(f"header {self.number} has a negative size")
            if info.type == tarfile.GNUTYPE_SPARSE:
                raise Refused(f"header {self.number} is a sparse file; sparse files are not allowed")
            if info.type not in _PAX + _GNU_LONG + (tarfile.XGLTYPE,):
                break
            if info.size > MAX_EXTENDED_HEADER:
                raise Refused(
                    f"header {self.number} has an extended header of {info.size} bytes "
                    f"(the most is {MAX_EXTENDED_HEADER})"
                )
            data = self.read(_round_up(info.size))
            if info.type in _PAX or info.type == tarfile.XGLTYPE:
                records = _pax_records(data)
                if any(key.startswith(b"GNU.sparse") for key in records):
                    raise Refused(f"header {self.number} is a sparse file; sparse files are not allowed")
                if info.type == tarfile.XGLTYPE:
                    if b"size" in records:
                        raise Refused(f"header {self.number} is a global pax header that sets a size")
                    continue
                size_record = records.get(b"size", size_record)
        else:
            raise Refused(f"header {self.number} comes after more than {MAX_EXTENDED_CHAIN} extended headers")
        self.members_left -= 1
        if self.members_left < 0:
            raise Refused(f"has more than {self.max_members} members")
        size = info.size
        if size_record is not None:
            try:
                size = int(size_record.decode("utf-8", "replace"))
            except ValueError:
                size = 0
            if size < 0:
                raise Refused(f"header {self.number} has a negative size")
        if info.isreg() or info.type not in tarfile.SUPPORTED_TYPES:
            self.skip(size)
        return True
