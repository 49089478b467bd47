"""
Stand-in for the reference ``oct_turrets`` package (see
:mod:`octtwisted._scripts.compat`): just what test scripts import.
"""

__octtwisted_fallback__ = True
