"""
The one compiled part of oct-twisted: the hot path of per-request
statistics (``octtwisted/_stats/requestcounts.c``). It is optional: without a
C compiler the same code runs in Python (``octtwisted._stats.requests``),
slower. Everything else is in ``setup.cfg``.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "octtwisted._stats.requestcounts",
            ["octtwisted/_stats/requestcounts.c"],
            optional=True,
        )
    ]
)
