"""
Tests for :mod:`octtwisted._edge.package`: a turret package is extracted only when
every member of it is safe, and an unsafe, broken or incomplete one is
refused as a whole, with one line naming it, leaving nothing behind.
"""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
import tempfile
from pathlib import Path
from typing import Iterable

from twisted.trial.unittest import SynchronousTestCase

from octtwisted._edge import package
from octtwisted._edge.package import ExtractedPackage, PackageError, extract_package

CONFIG = {
    "name": "navigation",
    "cannons": 2,
    "rampup": 0,
    "script": "test_scripts/v_user.py",
    "hq_address": "127.0.0.1",
    "hq_publisher": 5000,
    "hq_rc": 5001,
}
CONFIG_BYTES = json.dumps(CONFIG).encode("utf-8")
SCRIPT_BYTES = b"from octtwisted import Transaction\n"

Member = tuple[tarfile.TarInfo, "bytes | None"]


def regular(name: str, data: bytes = b"", mode: int = 0o644) -> Member:
    """A regular file member called ``name`` holding ``data``."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    return info, data


def directory(name: str, mode: int = 0o755) -> Member:
    """A directory member called ``name``."""
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    return info, None


def special(name: str, kind: bytes, linkname: str = "") -> Member:
    """A member called ``name`` of tar type ``kind`` (a link, a device...)."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    return info, None


def config_member(name: str = "config.json") -> Member:
    """The ``config.json`` member."""
    return regular(name, CONFIG_BYTES)


def write_archive(path: Path, members: Iterable[Member], mode: str = "w:gz") -> Path:
    """Write ``members``, exactly as given, to a new archive at ``path``."""
    with tarfile.open(path, mode) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def snapshot(folder: Path) -> set[str]:
    """Every path under ``folder``, relative to it (links not followed)."""
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


class ExtractPackageTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.base = Path(self.mktemp()).resolve()
        self.base.mkdir(parents=True)
        self.destination = self.base / "destination"
        self.destination.mkdir()
        self.archive = self.base / "turret.tar.gz"
        # Something outside the destination that an attack could target.
        self.outside = self.base / "outside"
        self.outside.mkdir()
        self.victim = self.outside / "victim.txt"
        self.victim.write_bytes(b"untouched")

    def assertRefused(self, members: Iterable[Member], fragment: str, mode: str = "w:gz") -> str:
        """
        Extracting an archive of ``members`` raises :class:`PackageError`
        whose one-line message names the archive and holds ``fragment``;
        the destination stays empty and nothing else under the test folder
        changed.
        """
        write_archive(self.archive, members, mode)
        before = snapshot(self.base)
        with self.assertRaises(PackageError) as caught:
            extract_package(self.archive, self.destination)
        return self.assertNothingWritten(caught.exception, fragment, before)

    def assertNothingWritten(self, error: PackageError, fragment: str, before: set[str]) -> str:
        """The checks of :meth:`assertRefused` once ``error`` is raised."""
        message = str(error)
        self.assertIn(fragment, message)
        self.assertNotIn("\n", message)
        self.assertIn(str(self.archive), message)
        self.assertEqual(list(self.destination.iterdir()), [])
        self.assertEqual(snapshot(self.base), before)
        self.assertEqual(self.victim.read_bytes(), b"untouched")
        self.assertFalse((self.base / "escape").exists())
        return message

    # -- a good package ----------------------------------------------------

    def good_members(self) -> list[Member]:
        """A package as ``oct pack-turrets`` could write it, names with ``./``."""
        script = regular("./test_scripts/v_user.py", SCRIPT_BYTES, mode=0o4775)
        script[0].uid, script[0].gid = 12345, 54321
        script[0].uname, script[0].gname = "nobody-here", "nogroup-here"
        return [
            directory("./"),
            config_member("./config.json"),
            directory("./test_scripts/", mode=0o777),
            script,
            regular("./extra/data.csv", b"a,b\n1,2\n", mode=0o666),
            regular("./extra/secret.txt", b"s", mode=0o600),
        ]

    def test_good_package(self) -> None:
        """
        A package with ``./`` names, its script in a subfolder and extra
        files (one in a folder with no directory member) extracts them all,
        and returns the absolute path of its ``config.json``.
        """
        write_archive(self.archive, self.good_members())
        config_path = extract_package(self.archive, self.destination)
        self.assertEqual(config_path, self.destination / "config.json")
        self.assertTrue(config_path.is_absolute())
        self.assertEqual(json.loads(config_path.read_bytes()), CONFIG)
        self.assertEqual(
            (self.destination / "test_scripts" / "v_user.py").read_bytes(), SCRIPT_BYTES
        )
        self.assertEqual((self.destination / "extra" / "data.csv").read_bytes(), b"a,b\n1,2\n")
        self.assertEqual(
            snapshot(self.destination),
            {
                "config.json",
                "test_scripts",
                "test_scripts/v_user.py",
                "extra",
                "extra/data.csv",
                "extra/secret.txt",
            },
        )

    def test_permissions(self) -> None:
        """
        Files get 0o644, or 0o755 when the owner could execute them (never
        setuid or world-writable), directories 0o755, and the archive's
        owners are ignored.
        """
        write_archive(self.archive, self.good_members())
        extract_package(self.archive, self.destination)

        def mode(*parts: str) -> int:
            return stat.S_IMODE(self.destination.joinpath(*parts).stat().st_mode)

        self.assertEqual(mode("config.json"), 0o644)
        self.assertEqual(mode("test_scripts", "v_user.py"), 0o755)
        self.assertEqual(mode("extra", "data.csv"), 0o644)
        self.assertEqual(mode("extra", "secret.txt"), 0o644)
        self.assertEqual(mode("test_scripts"), 0o755)
        self.assertEqual(mode("extra"), 0o755)
        owner = (self.destination / "test_scripts" / "v_user.py").stat()
        self.assertEqual((owner.st_uid, owner.st_gid), (os.getuid(), os.getgid()))

    def test_compressions(self) -> None:
        """Plain, gzip, bzip2 and xz archives are all read."""
        for mode in ("w", "w:gz", "w:bz2", "w:xz"):
            destination = self.base / f"destination-{mode}"
            destination.mkdir()
            archive = write_archive(
                self.base / f"turret-{mode}.tar",
                [config_member(), regular("v_user.py", SCRIPT_BYTES)],
                mode,
            )
            config_path = extract_package(archive, destination)
            self.assertEqual(json.loads(config_path.read_bytes()), CONFIG)
            self.assertEqual((destination / "v_user.py").read_bytes(), SCRIPT_BYTES)

    def test_destination_not_empty(self) -> None:
        """
        A destination that is not an empty directory is a mistake of the
        caller: ``ValueError``, and what it held is left alone.
        """
        write_archive(self.archive, [config_member()])
        (self.destination / "keep").write_bytes(b"mine")
        self.assertRaises(ValueError, extract_package, self.archive, self.destination)
        self.assertEqual((self.destination / "keep").read_bytes(), b"mine")
        self.assertEqual(snapshot(self.destination), {"keep"})

    # -- names that escape ---------------------------------------------------

    def test_absolute_path(self) -> None:
        """A member with an absolute path is refused; nothing lands there."""
        target = self.base / "escape"
        self.assertRefused(
            [config_member(), regular(str(target), b"evil")], "has an absolute path"
        )
        self.assertFalse(target.exists())

    def test_parent_component(self) -> None:
        """A ``../escape`` member is refused, even after good members."""
        self.assertRefused(
            [config_member(), regular("v_user.py", SCRIPT_BYTES), regular("../escape", b"evil")],
            "'..' component",
        )

    def test_parent_component_in_the_middle(self) -> None:
        """``a/../../escape`` is refused; so is ``a/..`` that stays inside."""
        self.assertRefused(
            [config_member(), directory("a"), regular("a/../../escape", b"evil")],
            "'..' component",
        )
        self.assertRefused(
            [config_member(), regular("a/../inside", b"fine?")], "'..' component"
        )

    def test_parent_component_with_dot_prefix(self) -> None:
        """``./../escape`` is refused too."""
        self.assertRefused([config_member(), regular("./../escape", b"evil")], "'..' component")

    def test_backslash(self) -> None:
        r"""A name with a backslash (``..\escape``) is refused."""
        self.assertRefused([config_member(), regular("..\\escape", b"evil")], "backslash")

    def test_message_on_one_line(self) -> None:
        """A member name holding a line break still gives a one-line message."""
        message = self.assertRefused(
            [config_member(), regular("../bad\nname", b"evil")], "'..' component"
        )
        self.assertIn("bad\\nname", message)

    # -- links and special files ---------------------------------------------

    def test_symlink_inside(self) -> None:
        """A symbolic link is refused even when it points inside the package."""
        self.assertRefused(
            [config_member(), special("alias.json", tarfile.SYMTYPE, "config.json")],
            "is a symbolic link",
        )

    def test_symlink_outside(self) -> None:
        """A symbolic link out of the destination is refused."""
        self.assertRefused(
            [config_member(), special("out", tarfile.SYMTYPE, "../outside/victim.txt")],
            "is a symbolic link",
        )
        self.assertRefused(
            [config_member(), special("out", tarfile.SYMTYPE, str(self.victim))],
            "is a symbolic link",
        )

    def test_symlink_then_write_through_it(self) -> None:
        """
        The classic two-step attack, a link to a directory outside and then
        a file "inside" the link, writes nothing there.
        """
        self.assertRefused(
            [
                config_member(),
                special("out", tarfile.SYMTYPE, str(self.outside)),
                regular("out/escape", b"evil"),
                regular("out/victim.txt", b"overwritten"),
            ],
            "is a symbolic link",
        )
        self.assertFalse((self.outside / "escape").exists())

    def test_hard_link(self) -> None:
        """A hard link is refused, to a member or to a file outside."""
        self.assertRefused(
            [config_member(), special("copy.json", tarfile.LNKTYPE, "config.json")],
            "is a hard link",
        )
        self.assertRefused(
            [
                config_member(),
                special("victim", tarfile.LNKTYPE, str(self.victim)),
                regular("victim", b"overwritten"),
            ],
            "is a hard link",
        )

    def test_character_device(self) -> None:
        """A character device member is refused."""
        self.assertRefused(
            [config_member(), special("null", tarfile.CHRTYPE)], "is a character device"
        )

    def test_block_device(self) -> None:
        """A block device member is refused."""
        self.assertRefused([config_member(), special("disk", tarfile.BLKTYPE)], "is a block device")

    def test_fifo(self) -> None:
        """A FIFO member is refused."""
        self.assertRefused([config_member(), special("pipe", tarfile.FIFOTYPE)], "is a FIFO")

    def test_other_special(self) -> None:
        """A member of a type tar does not know is refused too."""
        self.assertRefused([config_member(), special("odd", b"Z")], "is a special member")

    # -- limits -------------------------------------------------------------

    def test_too_many_members(self) -> None:
        """
        More than ``MAX_MEMBERS`` members are refused; exactly that many are
        fine.
        """
        self.patch(package, "MAX_MEMBERS", 3)
        members = [config_member(), regular("a"), regular("b")]
        write_archive(self.archive, members)
        extract_package(self.archive, self.destination)
        self.assertEqual(snapshot(self.destination), {"config.json", "a", "b"})

        for path in self.destination.iterdir():
            path.unlink()
        message = self.assertRefused(members + [directory("c")], "more than 3 members")
        self.assertNotIn("config.json", message)

    def test_too_large(self) -> None:
        """
        Files adding up to more than ``MAX_TOTAL_SIZE`` bytes are refused;
        exactly that many are fine.
        """
        limit = len(CONFIG_BYTES) + 100
        self.patch(package, "MAX_TOTAL_SIZE", limit)
        write_archive(self.archive, [config_member(), regular("data", b"x" * 100)])
        extract_package(self.archive, self.destination)
        self.assertEqual((self.destination / "data").stat().st_size, 100)

        for path in self.destination.iterdir():
            path.unlink()
        self.assertRefused(
            [config_member(), regular("data", b"x" * 50), regular("more", b"x" * 51)],
            f"more than {limit} bytes",
        )

    def test_limits_documented(self) -> None:
        """The real limits are 10,000 members, 1 GiB, and 1 MiB after the end."""
        self.assertEqual(package.MAX_MEMBERS, 10_000)
        self.assertEqual(package.MAX_TOTAL_SIZE, 1 << 30)
        self.assertEqual(package.MAX_TRAILING_SIZE, 1 << 20)

    # -- broken or incomplete archives ------------------------------------------

    def test_missing_archive(self) -> None:
        """An archive that does not exist is a one-line error naming it."""
        before = snapshot(self.base)
        with self.assertRaises(PackageError) as caught:
            extract_package(self.archive, self.destination)
        self.assertNothingWritten(caught.exception, "no such file", before)

    def test_archive_is_a_directory(self) -> None:
        """A directory given as the archive is refused."""
        self.archive.mkdir()
        before = snapshot(self.base)
        with self.assertRaises(PackageError) as caught:
            extract_package(self.archive, self.destination)
        self.assertNothingWritten(caught.exception, "not a regular file", before)

    def test_not_a_tar_file(self) -> None:
        """A file that is no archive at all, or an empty one, is refused."""
        for content in (b"this is not a tar archive\n" * 40, b"", CONFIG_BYTES):
            self.archive.write_bytes(content)
            before = snapshot(self.base)
            with self.assertRaises(PackageError) as caught:
                extract_package(self.archive, self.destination)
            self.assertNothingWritten(caught.exception, "not a tar archive", before)

    def test_corrupt_compressed(self) -> None:
        """
        A gzip, bzip2 or xz archive cut short, or with damaged bytes that
        only its checksum reveals, is refused before anything is written.
        """
        members = [config_member(), regular("data", os.urandom(200_000))]
        for mode in ("w:gz", "w:bz2", "w:xz"):
            data = write_archive(self.archive, members, mode).read_bytes()
            middle = len(data) // 2
            damaged = data[:middle] + bytes(64) + data[middle + 64 :]
            for content in (data[:middle], damaged, data[:-8]):
                self.archive.write_bytes(content)
                before = snapshot(self.base)
                with self.assertRaises(PackageError) as caught:
                    extract_package(self.archive, self.destination)
                self.assertNothingWritten(caught.exception, "", before)

    def test_truncated_plain_tar(self) -> None:
        """A plain tar cut in the middle of its last file is refused."""
        members = [config_member(), regular("data", b"x" * 100_000)]
        data = write_archive(self.archive, members, "w").read_bytes()
        self.archive.write_bytes(data[:50_000])
        before = snapshot(self.base)
        with self.assertRaises(PackageError) as caught:
            extract_package(self.archive, self.destination)
        self.assertNothingWritten(caught.exception, "corrupt archive", before)

    def test_trailing_data(self) -> None:
        """
        More than ``MAX_TRAILING_SIZE`` bytes after the end of the archive
        are refused (they would only cost time to read).
        """
        self.patch(package, "MAX_TRAILING_SIZE", 20 * 1024)
        data = write_archive(self.archive, [config_member()], "w").read_bytes()
        self.archive.write_bytes(data + bytes(20 * 1024))
        before = snapshot(self.base)
        with self.assertRaises(PackageError) as caught:
            extract_package(self.archive, self.destination)
        self.assertNothingWritten(caught.exception, "after the end of the archive", before)

    def test_failure_while_writing(self) -> None:
        """
        When writing fails half-way (a full disk, say), the files written
        so far are removed again and the error names the archive.
        """
        write_archive(
            self.archive,
            [config_member(), directory("sub"), regular("sub/data", b"x"), regular("last", b"y")],
        )
        written: list[str] = []
        real = package._write_file

        def failing(source: object, target: Path, member: tarfile.TarInfo) -> None:
            if member.name == "last":
                raise OSError(28, "No space left on device")
            real(source, target, member)  # type: ignore[arg-type]
            written.append(member.name)

        self.patch(package, "_write_file", failing)
        before = snapshot(self.base)
        with self.assertRaises(PackageError) as caught:
            extract_package(self.archive, self.destination)
        self.assertEqual(written, ["config.json", "sub/data"])
        message = self.assertNothingWritten(caught.exception, "extraction failed", before)
        self.assertIn("No space left on device", message)

    def test_no_config(self) -> None:
        """An archive without ``config.json`` at its root is refused."""
        self.assertRefused([regular("v_user.py", SCRIPT_BYTES)], "no config.json at its root")

    def test_config_in_subfolder(self) -> None:
        """A ``config.json`` only in a subfolder does not count."""
        self.assertRefused(
            [directory("turret"), config_member("turret/config.json")],
            "no config.json at its root",
        )

    def test_config_is_a_directory(self) -> None:
        """A ``config.json`` that is a directory is refused."""
        self.assertRefused(
            [directory("config.json"), regular("config.json/x")], "it is not a file"
        )

    def test_empty_archive(self) -> None:
        """A valid tar file with no member at all is refused."""
        write_archive(self.archive, [])
        before = snapshot(self.base)
        with self.assertRaises(PackageError) as caught:
            extract_package(self.archive, self.destination)
        self.assertNothingWritten(caught.exception, "", before)

    def test_duplicate_member(self) -> None:
        """A file that appears twice (the second could replace the first) is refused."""
        self.assertRefused(
            [config_member(), regular("v_user.py"), regular("./v_user.py", b"other")],
            "appears more than once",
        )

    def test_file_and_directory(self) -> None:
        """A path that is both a file and a directory is refused."""
        self.assertRefused(
            [config_member(), regular("a"), directory("a")], "appears more than once"
        )

    def test_inside_a_file(self) -> None:
        """A member under a path that is a file is refused, in either order."""
        self.assertRefused(
            [config_member(), regular("a"), regular("a/b")], "which is a file"
        )
        self.assertRefused(
            [config_member(), regular("a/b"), regular("a")], "which is a file"
        )

    def test_error_attributes(self) -> None:
        """:class:`PackageError` keeps the archive and the problem apart."""
        error = PackageError(Path("x.tar.gz"), "two\nlines")
        self.assertEqual((error.archive, error.problem), ("x.tar.gz", "two\nlines"))
        self.assertEqual(str(error), "x.tar.gz: two lines")


class ExtractedPackageTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.base = Path(self.mktemp()).resolve()
        self.base.mkdir(parents=True)
        # Temporary directories are made here, where the tests can see them.
        self.temporary = self.base / "tmp"
        self.temporary.mkdir()
        self.patch(tempfile, "tempdir", str(self.temporary))
        self.archive = write_archive(
            self.base / "turret.tar.gz", [config_member(), regular("v_user.py", SCRIPT_BYTES)]
        )

    def test_open_close(self) -> None:
        """
        ``open`` extracts into a new ``oct-turret-`` directory and returns
        its config path; ``close`` removes the directory, and may be called
        again, or before ``open``.
        """
        extracted = ExtractedPackage(self.archive)
        extracted.close()
        self.assertIsNone(extracted.directory)
        config_path = extracted.open()
        folder = extracted.directory
        assert folder is not None
        self.assertEqual(folder.parent, self.temporary)
        self.assertTrue(folder.name.startswith("oct-turret-"))
        self.assertEqual(config_path, folder.resolve() / "config.json")
        self.assertEqual(json.loads(config_path.read_bytes()), CONFIG)
        self.assertTrue((folder / "v_user.py").is_file())
        extracted.close()
        self.assertFalse(folder.exists())
        self.assertIsNone(extracted.directory)
        extracted.close()
        self.assertEqual(list(self.temporary.iterdir()), [])

    def test_open_twice(self) -> None:
        """Opening an open package is a mistake: ``RuntimeError``."""
        extracted = ExtractedPackage(self.archive)
        extracted.open()
        self.addCleanup(extracted.close)
        self.assertRaises(RuntimeError, extracted.open)
        self.assertEqual(len(list(self.temporary.iterdir())), 1)

    def test_with(self) -> None:
        """``with`` gives the config path and removes the directory after."""
        with ExtractedPackage(self.archive) as config_path:
            self.assertTrue(config_path.is_file())
            self.assertEqual(config_path.parent.parent, self.temporary)
        self.assertFalse(config_path.exists())
        self.assertEqual(list(self.temporary.iterdir()), [])

    def test_with_error(self) -> None:
        """An error inside ``with`` propagates and the directory is still removed."""
        seen: list[Path] = []
        with self.assertRaises(ZeroDivisionError):
            with ExtractedPackage(self.archive) as config_path:
                seen.append(config_path)
                1 / 0
        self.assertFalse(seen[0].exists())
        self.assertEqual(list(self.temporary.iterdir()), [])

    def test_close_survives_removed_directory(self) -> None:
        """``close`` does not raise when the directory is gone already."""
        extracted = ExtractedPackage(self.archive)
        extracted.open()
        folder = extracted.directory
        assert folder is not None
        for path in sorted(folder.rglob("*"), reverse=True):
            path.unlink()
        folder.rmdir()
        extracted.close()
        self.assertIsNone(extracted.directory)

    def test_refused_package(self) -> None:
        """
        A package that cannot be extracted raises :class:`PackageError` from
        ``open`` (and ``with``) and leaves no temporary directory behind.
        """
        write_archive(self.archive, [config_member(), regular("../escape", b"evil")])
        extracted = ExtractedPackage(self.archive)
        self.assertRaises(PackageError, extracted.open)
        self.assertIsNone(extracted.directory)
        with self.assertRaises(PackageError):
            with ExtractedPackage(self.archive):
                pass
        self.assertEqual(list(self.temporary.iterdir()), [])
        self.assertFalse((self.base / "escape").exists())

    def test_missing_package(self) -> None:
        """A missing package raises :class:`PackageError` and leaves nothing behind."""
        extracted = ExtractedPackage(self.base / "missing.tar.gz")
        self.assertRaises(PackageError, extracted.open)
        self.assertEqual(list(self.temporary.iterdir()), [])


# -- crafted headers ---------------------------------------------------------


def tar_header(name: str, kind: bytes, size: int) -> bytes:
    """One raw 512-byte ustar header, whatever ``kind`` and ``size`` say."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    return info.tobuf(tarfile.USTAR_FORMAT)


def padded(data: bytes) -> bytes:
    """``data`` padded with zeros to whole tar blocks."""
    return data + b"\0" * (-len(data) % tarfile.BLOCKSIZE)


def pax_record(key: str, value: str) -> bytes:
    """One pax record, ``"<length> key=value\\n"``."""
    body = f" {key}={value}\n".encode()
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length += 1
    return str(length).encode() + body


def config_blocks() -> bytes:
    """The raw blocks of a ``config.json`` member."""
    return tar_header("config.json", tarfile.REGTYPE, len(CONFIG_BYTES)) + padded(CONFIG_BYTES)


def huge_header_archive(path: Path, kind: bytes, size: int, first: bool = False) -> Path:
    """
    A ``.tar.gz`` holding ``config.json`` and then (or, with ``first``,
    before it) a header of type ``kind`` that claims ``size`` bytes, followed
    by that many zero bytes. The zeros go in as gzip members of 1 MiB each,
    compressed once, so that the file stays small (a 400 MB header makes a
    file of about 400 KB) and is written at once.
    """
    import gzip

    bomb = tar_header("././@PaxHeader", kind, size)
    head = bomb if first else config_blocks() + bomb
    mib = gzip.compress(b"\0" * 2**20, compresslevel=9)
    with open(path, "wb") as output:
        output.write(gzip.compress(head))
        for _ in range(size // 2**20):
            output.write(mib)
        output.write(gzip.compress(b"\0" * (padded(b"\0" * (size % 2**20)).__len__() + 1024)))
    return path


class CraftedHeaderTests(SynchronousTestCase):
    """
    Headers ``tarfile`` would read whole (pax, GNU long names) or that take
    it into unbounded work (sparse maps, long chains) are refused before
    ``tarfile`` reads them, with one line, in bounded time and memory.
    """

    def setUp(self) -> None:
        self.base = Path(self.mktemp()).resolve()
        self.base.mkdir(parents=True)
        self.destination = self.base / "destination"
        self.destination.mkdir()
        self.archive = self.base / "turret.tar.gz"

    def assertRefused(self, fragment: str) -> str:
        with self.assertRaises(PackageError) as caught:
            extract_package(self.archive, self.destination)
        message = str(caught.exception)
        self.assertIn(fragment, message)
        self.assertNotIn("\n", message)
        self.assertEqual(list(self.destination.iterdir()), [])
        return message

    def write_raw(self, raw: bytes, compress: str = "gz") -> None:
        import bz2
        import gzip
        import lzma

        compressors = {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress, "": bytes}
        self.archive.write_bytes(compressors[compress](raw + b"\0" * 1024))

    def test_huge_pax_header(self) -> None:
        """
        The issue's package: a 400 KB ``.tar.gz`` whose pax header claims
        (and holds) 400 MB is refused at once, naming the header's size,
        with less than 4 MiB allocated at the peak.
        """
        import time
        import tracemalloc

        huge_header_archive(self.archive, tarfile.XHDTYPE, 400 * 2**20)
        self.assertLess(self.archive.stat().st_size, 600_000)
        tracemalloc.start()
        self.addCleanup(tracemalloc.stop)
        started = time.monotonic()
        message = self.assertRefused(f"extended header of {400 * 2**20} bytes (the most is 65536)")
        peak = tracemalloc.get_traced_memory()[1]
        self.assertLess(time.monotonic() - started, 5)
        self.assertLess(peak, 4 * 2**20)
        self.assertIn("header 2", message)

    def test_every_extended_header_kind(self) -> None:
        """
        Pax extended (``x``, Solaris ``X``) and global (``g``) headers and
        GNU long names (``L``) and links (``K``) over 64 KiB are refused,
        first member or not, gzip, bzip2, xz or plain; 64 KiB is accepted.
        """
        for kind in (tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.XGLTYPE,
                     tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
            for compress in ("gz", "bz2", "xz", ""):
                for first in (False, True):
                    bomb = tar_header("././@LongLink", kind, 64 * 1024 + 1) + b"\0" * 1024
                    self.write_raw(bomb + config_blocks() if first else config_blocks() + bomb, compress)
                    self.assertRefused("extended header of 65537 bytes")
        records = pax_record("comment", "x" * (64 * 1024 - 30))
        records = padded(records + b"\0" * (64 * 1024 - len(records)))[: 64 * 1024]
        self.write_raw(tar_header("pax", tarfile.XHDTYPE, 64 * 1024) + records + config_blocks())
        self.assertEqual(extract_package(self.archive, self.destination).name, "config.json")

    def test_plain_tar_that_starts_like_gzip(self) -> None:
        """
        A plain tar whose first header's name starts with gzip's magic
        bytes (``tarfile`` falls back to reading it plain) is scanned too.
        """
        self.write_raw(tar_header("\x1f\x8bx", tarfile.XHDTYPE, 400 * 2**20) + b"\0" * 4096, "")
        self.assertRefused("extended header of")

    def test_header_hidden_behind_pax_size(self) -> None:
        """
        A pax ``size`` record makes ``tarfile`` skip more data than the
        ustar header says; the huge header it then lands on is found.
        """
        pax = pax_record("size", "1024")
        raw = (
            config_blocks()
            + tar_header("pax", tarfile.XHDTYPE, len(pax)) + padded(pax)
            + tar_header("hidden", tarfile.REGTYPE, 0)
            + b"\0" * 1024
            + tar_header("bomb", tarfile.XHDTYPE, 400 * 2**20)
        )
        self.write_raw(raw)
        self.assertRefused("header 4 has an extended header of")

    def test_sparse_and_chains_and_negative_sizes(self) -> None:
        """
        GNU sparse members (old style, and pax ``GNU.sparse.*`` records),
        global headers that set a size, members behind more than 3 extended
        headers and negative sizes are refused.
        """
        sparse_pax = pax_record("GNU.sparse.major", "1") + pax_record("GNU.sparse.minor", "0")
        size_pax = pax_record("size", "10")
        minus_pax = pax_record("size", "-600")
        long_name = padded(b"n" * 200)
        cases = {
            "sparse files are not allowed": [
                tar_header("s", tarfile.GNUTYPE_SPARSE, 0),
                tar_header("pax", tarfile.XHDTYPE, len(sparse_pax)) + padded(sparse_pax) + tar_header("f", tarfile.REGTYPE, 0),
            ],
            "global pax header that sets a size": [
                tar_header("g", tarfile.XGLTYPE, len(size_pax)) + padded(size_pax) + tar_header("f", tarfile.REGTYPE, 0),
            ],
            "more than 3 extended headers": [
                tar_header("L", tarfile.GNUTYPE_LONGNAME, 200) + long_name
                + (tar_header("pax", tarfile.XHDTYPE, len(size_pax)) + padded(size_pax)) * 3
                + tar_header("f", tarfile.REGTYPE, 0),
            ],
            "negative size": [
                tar_header("pax", tarfile.XHDTYPE, len(minus_pax)) + padded(minus_pax) + tar_header("f", tarfile.REGTYPE, 0),
            ],
        }
        for fragment, raws in cases.items():
            for raw in raws:
                self.write_raw(config_blocks() + raw)
                self.assertRefused(fragment)

    def test_real_extended_headers_still_work(self) -> None:
        """
        What tarfile and GNU tar write for long and non-ASCII names (pax
        headers, GNU long names) is extracted as before.
        """
        long = "d" * 120 + "/" + "f" * 150 + ".py"
        for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
            archive = self.base / f"ok-{fmt}.tar.gz"
            with tarfile.open(archive, "w:gz", format=fmt) as tar:
                for info, data in [config_member(), regular(long, b"x"), regular("caf\u00e9.txt", b"y")]:
                    tar.addfile(info, io.BytesIO(data or b""))
            destination = self.base / f"out-{fmt}"
            destination.mkdir()
            extract_package(archive, destination)
            self.assertEqual((destination / long).read_bytes(), b"x")
            self.assertEqual((destination / "caf\u00e9.txt").read_bytes(), b"y")
