"""
``python -m octtwisted.conformance``: the same as ``oct-turret-conformance``.
"""

import sys

from octtwisted.conformance.cli import main

sys.exit(main())
