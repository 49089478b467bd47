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
from twisted.python import usage

from octtwisted.tap import EXIT_BAD_INPUT, Options
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
        Without ``-c`` it is a usage error.
        """
        with self.assertRaises(usage.UsageError):
            Options().parseOptions([])

    def test_bad_config(self) -> None:
        """
        A config problem is one line and exit status 2.
        """
        self.assertFails("missing required key 'hq_rc'", "-c", str(write_config(self.folder(), hq_rc=None)))
        self.assertFails("cannot read config file", "-c", "/nonexistent/config.json")

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
