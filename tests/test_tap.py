"""
Tests for ``twistd oct-turret``'s command line: the plugin is installed,
and every bad config or script stops the turret at start with one line.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SynchronousTestCase, TestCase

from octtwisted._edge.tap import EXIT_BAD_INPUT, Options
from tests.helpers import TWISTD, write_config


class PluginInstalledTests(TestCase):
    async def test_twistd_lists_oct_turret(self) -> None:
        """
        The install ``make test`` uses shows ``oct-turret`` in
        ``twistd --help``.
        """
        out, err, code = await getProcessOutputAndValue(TWISTD, ["--help"])
        self.assertEqual(code, 0, err)
        self.assertIn(b"oct-turret", out)


class OptionsTests(SynchronousTestCase):
    def parse(self, *args: str) -> tuple[Options | None, int | None, str]:
        """
        Parse ``args``; return the options (or None), the exit status
        (None if it did not exit) and what went to stderr.
        """
        options = Options()
        err = io.StringIO()
        self.patch(sys, "stderr", err)
        try:
            options.parseOptions(list(args))
        except SystemExit as e:
            return None, e.code, err.getvalue()
        return options, None, err.getvalue()

    def assertFails(self, fragment: str, *args: str) -> None:
        options, code, err = self.parse(*args)
        self.assertEqual(code, EXIT_BAD_INPUT)
        self.assertEqual(err.count("\n"), 1, err)
        self.assertTrue(err.startswith("oct-turret: error: "), err)
        self.assertIn(fragment, err)

    def folder(self) -> Path:
        return Path(self.mktemp())

    def test_valid(self) -> None:
        """
        A good config and script load; a uuid is made when none is given.
        """
        path = write_config(self.folder())
        options, code, _ = self.parse("-c", str(path))
        self.assertIsNone(code)
        assert options is not None
        self.assertEqual(options.turret_config.name, "test-turret")
        self.assertEqual(options.transaction_class.__name__, "Transaction")
        self.assertEqual(len(options["uuid"]), 36)
        options, _, _ = self.parse("--config", str(path), "--uuid", "my-id")
        assert options is not None
        self.assertEqual(options["uuid"], "my-id")

    def test_no_config(self) -> None:
        """
        Without ``-c`` (or ``--tar``) it stops with one line.
        """
        self.assertFails("a config file is required")

    def test_config_and_tar_exclusive(self) -> None:
        """
        ``-c`` and ``--tar`` exclude each other: one line, exit status 2.
        """
        self.assertFails("exclude each other", "-c", "a.json", "--tar", "b.tar.gz")

    def test_standalone_options_alone(self) -> None:
        """
        ``--duration`` without ``--standalone`` stops with one line.
        """
        self.assertFails("go with --standalone", "-c", str(write_config(self.folder())), "--duration", "3")

    def test_bad_config(self) -> None:
        """
        A config problem is one line and exit status 2.
        """
        self.assertFails("missing required key 'hq_rc'", "-c", str(write_config(self.folder(), hq_rc=None)))
        self.assertFails("cannot read config file", "-c", "/nonexistent/config.json")

    def test_bad_tls_config(self) -> None:
        """
        A bad tls_* value is a config problem too: one line, exit status 2.
        """
        self.assertFails("'tls_ca': no such file", "-c", str(write_config(self.folder(), tls_ca="nowhere.pem")))

    def test_bad_scripts(self) -> None:
        """
        A script that fails to import, or has no Transaction class, is one
        line naming the script and the problem.
        """
        self.assertFails(
            "script failed to import: ModuleNotFoundError",
            "-c", str(write_config(self.folder(), script="import_error.py")),
        )
        self.assertFails(
            "script has no Transaction class",
            "-c", str(write_config(self.folder(), script="no_transaction.py")),
        )
        folder = self.folder()
        folder.mkdir()
        (folder / "syntax.py").write_text("def broken(:\n")
        self.assertFails("syntax error at line 1", "-c", str(write_config(folder, script="syntax.py")))

    def test_bad_uuid(self) -> None:
        """
        A uuid with a space would break the topic of addressed orders.
        """
        self.assertFails("--uuid must be", "-c", str(write_config(self.folder())), "--uuid", "a b")


class TarTests(TestCase):
    """
    ``--tar``: running a package made by ``oct pack-turrets``.
    """

    timeout = 60

    def make_package(self, folder: Path, **keys: object) -> Path:
        import tarfile

        source = folder / "src"
        write_config(source, script="deferred_sleep.py", **keys)
        (source / "test_scripts").mkdir()
        (source / "deferred_sleep.py").rename(source / "test_scripts" / "deferred_sleep.py")
        config = (source / "config.json").read_text().replace('"deferred_sleep.py"', '"test_scripts/deferred_sleep.py"')
        (source / "config.json").write_text(config)
        archive = folder / "turret.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(source / "config.json", "config.json")
            tar.add(source / "test_scripts", "test_scripts")
        return archive

    async def test_runs_package_and_removes_it(self) -> None:
        """
        A package runs standalone from its extracted folder, and the
        temporary folder is gone when the turret has exited.
        """
        from tests.helpers import TurretProcess

        folder = Path(self.mktemp()).absolute()
        folder.mkdir()
        archive = self.make_package(folder, hq_address=None, hq_publisher=None, hq_rc=None)
        turret = TurretProcess(["--tar", str(archive), "--standalone", "--duration", "0.5"], cwd=folder)
        self.addCleanup(turret.cleanup)
        self.assertEqual(await turret.wait_exit(), 0, turret.output)
        self.assertIn("Run summary", turret.output)
        extracted = turret.output.split("script ")[1].split()[0]
        self.assertEqual(extracted, "test_scripts/deferred_sleep.py")
        temp_dir = Path(turret.output.split(" from ")[1].split()[0])
        self.assertIn("oct-turret-", temp_dir.name)
        self.assertFalse(temp_dir.exists(), f"{temp_dir} left behind")

    async def test_unsafe_package_refused(self) -> None:
        """
        A package with a member that climbs out of its folder is refused
        at start with one line, exit status 2.
        """
        import io
        import tarfile

        from tests.helpers import TurretProcess

        folder = Path(self.mktemp()).absolute()
        folder.mkdir()
        archive = folder / "evil.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            info = tarfile.TarInfo("../escaped.py")
            info.size = 1
            tar.addfile(info, io.BytesIO(b"#"))
        turret = TurretProcess(["--tar", str(archive)], cwd=folder)
        self.addCleanup(turret.cleanup)
        self.assertEqual(await turret.wait_exit(), EXIT_BAD_INPUT)
        lines = [line for line in turret.output.splitlines() if line.strip()]
        self.assertEqual(len(lines), 1, turret.output)
        self.assertIn("evil.tar.gz", lines[0])
        self.assertFalse((folder.parent / "escaped.py").exists())
