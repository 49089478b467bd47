"""
Sphinx configuration for the oct-twisted documentation.

Built by ``make docs`` (``sphinx-build -W``: any warning fails the build).
No extension is used, so nothing beyond Sphinx itself is needed.
"""

import configparser
from pathlib import Path

_setup = configparser.ConfigParser()
_setup.read(Path(__file__).resolve().parent.parent / "setup.cfg")

project = "oct-twisted"
author = "the oct-twisted authors"
copyright = "the oct-twisted authors"
release = _setup.get("metadata", "version", fallback="")
version = release

root_doc = "index"
extensions = []
exclude_patterns = ["_build"]
templates_path = []
html_static_path = []

html_theme = "alabaster"
html_title = f"oct-twisted {release}"
highlight_language = "python"
