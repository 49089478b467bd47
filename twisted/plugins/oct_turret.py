"""
twistd plugin: ``twistd -n oct-turret -c config.json``.

This file only names the module that builds the service; it must stay tiny
and import nothing heavy, because twistd imports every plugin file just to
list the commands (and txzmq installs the reactor when it is imported).
"""

from twisted.application.service import ServiceMaker

octTurret = ServiceMaker(
    "oct-turret",
    "octtwisted._edge.tap",
    "An OCT load-testing turret: takes orders from an OCT HQ over ZeroMQ "
    "and fires Twisted cannons.",
    "oct-turret",
)
