"""
``twistd oct-turret``: what the twistd plugin names. The options are in
:mod:`octtwisted._edge.options`, the service tree in
:mod:`octtwisted._edge.services`.
"""

from octtwisted._edge.options import EXIT_BAD_INPUT, Options
from octtwisted._edge.services import makeService

__all__ = ["EXIT_BAD_INPUT", "Options", "makeService"]
