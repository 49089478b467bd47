"""
Turret packages: the ``NAME.tar.gz`` files that ``oct pack-turrets`` writes.

A package holds ``config.json`` at its root, the test script at the
relative path the config names, and maybe a few extra files. The turret
runs one with ``twistd -n oct-turret --tar FILE.tar.gz``.

An archive is untrusted input, so :func:`extract_package` checks every
member before it writes a single byte, and refuses the whole archive when
one of them is unsafe:

* a name that is absolute, holds a ``..`` component or a backslash, or
  would land outside the destination;
* anything but a regular file or a directory: symbolic and hard links,
  character and block devices, FIFOs and other special members;
* more than :data:`MAX_MEMBERS` members, or regular files adding up to
  more than :data:`MAX_TOTAL_SIZE` bytes;
* pax extended headers or GNU long names over 64 KiB, and sparse files:
  :mod:`~octtwisted._edge.tarscan` reads the headers with bounded reads
  before ``tarfile`` does (it would read such a header whole).

The whole archive is read once before that too, so that a damaged
compressed archive fails its checksum before anything is written.

It then writes the files itself (``tarfile``'s own extraction is not used,
so no extraction filter is relied on): files get mode ``0o644``, or
``0o755`` when the owner's exec bit was set, directories ``0o755``, and the
archive's owners are ignored. A failure half-way removes whatever was
written. Every problem raises :class:`PackageError`, whose ``str()`` is one
line naming the archive and what is wrong.

:class:`ExtractedPackage` extracts a package into a fresh temporary
directory and removes that directory again when closed.
"""

from __future__ import annotations

import lzma
import os
import shutil
import stat
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import IO

from octtwisted._edge.tarscan import Refused, scan_headers

#: The most members (files, directories, anything) an archive may have.
MAX_MEMBERS = 10_000

#: The most bytes the regular files of an archive may add up to, once
#: uncompressed: 1 GiB.
MAX_TOTAL_SIZE = 1024**3

#: The most bytes an archive may hold after its end-of-archive marker.
#: Tar pads an archive to a whole record (10 KiB by default); reading this
#: padding to the end makes gzip, bzip2 and xz verify their checksums, so a
#: damaged archive is refused before anything is extracted.
MAX_TRAILING_SIZE = 1024 * 1024

#: The name of the configuration file, at the root of the archive.
CONFIG_NAME = "config.json"

#: How many bytes are copied at a time while extracting a file.
_CHUNK_SIZE = 1024 * 1024

#: Errors the standard library raises for unreadable or corrupt archives.
_READ_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError)


class PackageError(Exception):
    """
    A turret package cannot be used; ``str()`` is one line for the user,
    naming the archive and the problem.

    :ivar archive: the archive's path, as given.
    :ivar problem: what is wrong with it.
    """

    def __init__(self, archive: str | os.PathLike[str], problem: str) -> None:
        super().__init__(archive, problem)
        self.archive = str(archive)
        self.problem = problem

    def __str__(self) -> str:
        return _one_line(f"{self.archive}: {self.problem}")


def _one_line(text: str) -> str:
    """Replace line breaks so that a message stays on one line."""
    return " ".join(text.splitlines())


def _describe(error: BaseException) -> str:
    """A short description of a low-level error, for a message."""
    text = str(error) or type(error).__name__
    if isinstance(error, OSError) and error.strerror:
        text = error.strerror
    return _one_line(text)


def _kind(member: tarfile.TarInfo) -> str | None:
    """
    Why ``member`` may not be extracted because of its type, or ``None``
    when it is a regular file or a directory.
    """
    if member.isreg() or member.isdir():
        return None
    if member.issym():
        return f"is a symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"is a hard link (to {member.linkname!r})"
    if member.ischr():
        return "is a character device"
    if member.isblk():
        return "is a block device"
    if member.isfifo():
        return "is a FIFO"
    return f"is a special member (tar type {member.type!r})"


def _relative_path(member: tarfile.TarInfo, root: Path) -> PurePosixPath | None:
    """
    The path of ``member`` relative to the destination ``root``, or ``None``
    for an entry that names the root itself (such as ``./``).

    :raises ValueError: with the reason when the name is unsafe.
    """
    name = member.name
    if "\\" in name:
        raise ValueError("has a backslash in its name")
    if name.startswith("/"):
        raise ValueError("has an absolute path")
    path = PurePosixPath(name)
    if ".." in path.parts:
        raise ValueError("has a '..' component in its path")
    if path.parts in ((), (".",)):
        if member.isdir():
            return None
        raise ValueError("has an empty name")
    target = (root / path).resolve()
    if not target.is_relative_to(root) or target == root:
        raise ValueError("would be extracted outside the destination")
    return PurePosixPath(*target.relative_to(root).parts)


def _plan(
    archive: str | os.PathLike[str], tar: tarfile.TarFile, root: Path
) -> list[tuple[PurePosixPath, tarfile.TarInfo]]:
    """
    Read and check every member of ``tar`` before anything is written.

    :return: the members to extract, each with its path relative to
        ``root``, in archive order.
    :raise PackageError: when one member is unsafe, there are too many or
        they are too large, or ``config.json`` is missing.
    """
    plan: list[tuple[PurePosixPath, tarfile.TarInfo]] = []
    kinds: dict[PurePosixPath, str] = {}
    count = 0
    total = 0
    while True:
        member = tar.next()
        if member is None:
            break
        count += 1
        if count > MAX_MEMBERS:
            raise PackageError(archive, f"has more than {MAX_MEMBERS} members")
        label = f"member {member.name!r}"
        problem = _kind(member)
        if problem is not None:
            raise PackageError(archive, f"{label} {problem}; only files and directories are allowed")
        try:
            path = _relative_path(member, root)
        except ValueError as error:
            raise PackageError(archive, f"{label} {error}") from None
        if path is None:
            continue
        kind = "directory" if member.isdir() else "file"
        if kinds.get(path, kind) != kind or (kind == "file" and path in kinds):
            raise PackageError(archive, f"{label} appears more than once")
        kinds[path] = kind
        if kind == "file":
            total += member.size
            if total > MAX_TOTAL_SIZE:
                raise PackageError(
                    archive, f"its files add up to more than {MAX_TOTAL_SIZE} bytes uncompressed"
                )
        plan.append((path, member))
    if count == 0:
        raise PackageError(archive, "is an empty archive")
    config = PurePosixPath(CONFIG_NAME)
    if config not in kinds:
        raise PackageError(archive, f"has no {CONFIG_NAME} at its root")
    if kinds[config] != "file":
        raise PackageError(archive, f"has {CONFIG_NAME} at its root, but it is not a file")
    # Checked once all are known, since the file may come after the member.
    for path in kinds:
        for parent in path.parents:
            if kinds.get(parent) == "file":
                raise PackageError(
                    archive, f"member {str(path)!r} is inside {str(parent)!r}, which is a file"
                )
    return plan


def _check_end(archive: str | os.PathLike[str], tar: tarfile.TarFile) -> None:
    """
    Read what follows the last member of ``tar`` up to the end of the file,
    so that a compressed archive's checksum is verified.

    :raise PackageError: when more than :data:`MAX_TRAILING_SIZE` bytes
        follow the end of the archive.
    :raise OSError: when the data is damaged (``zlib.error`` and
        ``lzma.LZMAError`` too).
    :raise EOFError: when the data is cut short.
    """
    fileobj = tar.fileobj
    if fileobj is None:  # pragma: no cover - only once the archive is closed
        return
    fileobj.seek(tar.offset)
    left = MAX_TRAILING_SIZE
    while True:
        chunk = fileobj.read(min(left + 1, _CHUNK_SIZE))
        if not chunk:
            return
        left -= len(chunk)
        if left < 0:
            raise PackageError(
                archive, f"has more than {MAX_TRAILING_SIZE} bytes after the end of the archive"
            )


def _write_file(source: IO[bytes], target: Path, member: tarfile.TarInfo) -> None:
    """
    Copy the data of the regular file ``member`` to the new file ``target``.

    :raise OSError: when the file cannot be written.
    :raise EOFError: when the archive holds less data than the header says.
    """
    mode = 0o755 if member.mode & stat.S_IXUSR else 0o644
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_BINARY", 0)
    descriptor = os.open(target, flags, mode)
    with open(descriptor, "wb") as output:
        os.chmod(descriptor if os.chmod in os.supports_fd else target, mode)
        left = member.size
        while left > 0:
            chunk = source.read(min(left, _CHUNK_SIZE))
            if not chunk:
                raise EOFError("unexpected end of data")
            output.write(chunk)
            left -= len(chunk)


def _clear(directory: Path) -> None:
    """Remove everything inside ``directory``, without raising."""
    try:
        entries = list(directory.iterdir())
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink()
        except OSError:
            pass


def extract_package(archive: str | os.PathLike[str], destination: Path) -> Path:
    """
    Extract the turret package ``archive`` into ``destination``.

    The archive may be a plain tar file or one compressed with gzip, bzip2
    or xz; member names may start with ``./``. Every member is checked
    first (see the module's documentation), and the archive is refused as
    a whole when one is unsafe: nothing is written then, and whatever was
    written before a later failure is removed again.

    :param archive: the package to extract.
    :param destination: an existing, empty directory.
    :return: the absolute path of the extracted ``config.json``.
    :raise PackageError: when the archive is missing, unreadable, corrupt,
        unsafe, too large, or has no ``config.json`` at its root.
    :raise ValueError: when ``destination`` is not an empty directory.
    """
    destination = Path(destination)
    if not destination.is_dir() or any(destination.iterdir()):
        raise ValueError(f"{destination} is not an empty directory")
    root = destination.resolve()
    if not Path(archive).is_file():
        problem = "no such file" if not Path(archive).exists() else "not a regular file"
        raise PackageError(archive, problem)
    try:
        scan_headers(archive, MAX_MEMBERS, MAX_TOTAL_SIZE)
    except Refused as refused:
        raise PackageError(archive, str(refused)) from None
    try:
        tar = tarfile.open(archive, "r:*")
    except (tarfile.ReadError, tarfile.CompressionError):
        # The message lists every method tried, over several lines.
        raise PackageError(archive, "not a tar archive, or a corrupt one") from None
    except _READ_ERRORS as error:
        raise PackageError(archive, f"cannot be read ({_describe(error)})") from None
    with tar:
        try:
            plan = _plan(archive, tar, root)
            _check_end(archive, tar)
        except _READ_ERRORS as error:
            raise PackageError(archive, f"corrupt archive ({_describe(error)})") from None
        try:
            for path, member in plan:
                target = root.joinpath(*path.parts)
                if member.isdir():
                    target.mkdir(mode=0o755, parents=True, exist_ok=True)
                    target.chmod(0o755)
                    continue
                target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
                source = tar.extractfile(member)
                if source is None:  # pragma: no cover - regular files always have data
                    raise EOFError(f"no data for member {member.name!r}")
                with source:
                    _write_file(source, target, member)
        except _READ_ERRORS as error:
            _clear(root)
            raise PackageError(archive, f"extraction failed ({_describe(error)})") from None
        except BaseException:
            _clear(root)
            raise
    return root / CONFIG_NAME


class ExtractedPackage:
    """
    A turret package extracted into a temporary directory of its own.

    :meth:`open` extracts it and returns the path of its ``config.json``;
    :meth:`close` removes the directory again. As a context manager, the
    ``with`` statement gets the config path and the directory is removed on
    the way out, also after an error::

        with ExtractedPackage("turret.tar.gz") as config_path:
            ...
    """

    def __init__(self, archive: str | os.PathLike[str]) -> None:
        """
        :param archive: the package to extract; nothing is read until
            :meth:`open`.
        """
        self.archive = archive
        self._directory: Path | None = None

    @property
    def directory(self) -> Path | None:
        """
        The temporary directory the package is extracted in, or ``None``
        before :meth:`open` and after :meth:`close`.
        """
        return self._directory

    def open(self) -> Path:
        """
        Make a temporary directory and extract the package into it.

        :return: the absolute path of the extracted ``config.json``.
        :raise PackageError: when the package cannot be extracted; the
            temporary directory is removed again first.
        :raise RuntimeError: when the package is open already.
        """
        if self._directory is not None:
            raise RuntimeError(f"{self.archive} is extracted already")
        directory = Path(tempfile.mkdtemp(prefix="oct-turret-"))
        try:
            config_path = extract_package(self.archive, directory)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        self._directory = directory
        return config_path

    def close(self) -> None:
        """
        Remove the temporary directory and everything in it.

        Calling it again, or before :meth:`open`, does nothing; it never
        raises.
        """
        directory, self._directory = self._directory, None
        if directory is not None:
            try:
                shutil.rmtree(directory, ignore_errors=True)
            except Exception:  # pragma: no cover - rmtree ignores its errors
                pass

    def __enter__(self) -> Path:
        """Extract the package; see :meth:`open`."""
        return self.open()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Remove the temporary directory; see :meth:`close`."""
        self.close()
