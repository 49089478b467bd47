"""
The documentation builds with Sphinx, warnings as errors (``make docs``),
and the README is a true quick start.
"""

from __future__ import annotations

import sys
from pathlib import Path

from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

ROOT = Path(__file__).resolve().parent.parent


class DocsTests(TestCase):
    timeout = 120

    async def test_sphinx_builds_without_warnings(self) -> None:
        """
        ``sphinx-build -W`` succeeds on docs/.
        """
        out_dir = Path(self.mktemp()).absolute()
        out, err, code = await getProcessOutputAndValue(
            sys.executable,
            ["-m", "sphinx", "-W", "-q", "-b", "html", str(ROOT / "docs"), str(out_dir)],
        )
        self.assertEqual(code, 0, (out + err).decode())

    def test_readme_commands(self) -> None:
        """
        The README starts with ``make demo`` and names ``make test``, and
        every docs page it links to exists.
        """
        readme = (ROOT / "README.rst").read_text()
        self.assertIn("make demo", readme)
        self.assertIn("make test", readme)
        self.assertLess(readme.index("make demo"), readme.index("make test"))
        import re

        for page in re.findall(r"docs/(\w+)\.rst", readme):
            self.assertTrue((ROOT / "docs" / f"{page}.rst").exists(), page)

    def test_in_memory_example_runs(self) -> None:
        """
        The in-memory turret test shown in docs/testing.rst runs and passes
        as it is written there.
        """
        import re
        import unittest

        page = (ROOT / "docs" / "testing.rst").read_text()
        blocks = re.findall(r"\.\. code-block:: python\n\n((?:   .*\n|\n)+)", page)
        example = next(b for b in blocks if "make_turret" in b)
        code = "\n".join(line[3:] for line in example.splitlines())
        namespace: dict[str, object] = {}
        exec(compile(code, "docs/testing.rst", "exec"), namespace)
        case = namespace["InMemoryTurret"]("test_one_cannon")  # type: ignore[operator]
        result = unittest.TestResult()
        case.run(result)
        self.assertEqual((result.errors, result.failures), ([], []))
        self.assertEqual(result.testsRun, 1)
