"""
Private. Firing: the turret service (lifecycle and orders), the per-run
object that lives from ``start`` to the end of a stop, the cannons, the
start schedule that brings them in, the cannon factories (reactor or threads),
and the small policies around a run (garbage collector, status answers,
HQ-loss watch, backpressure, the reactor watchdog).

May import: :mod:`octtwisted._core`, :mod:`octtwisted._scripts`,
:mod:`octtwisted._stats`, :mod:`octtwisted._http`. Never
:mod:`octtwisted._hq` (sockets) nor :mod:`octtwisted._edge` (the process).
"""
