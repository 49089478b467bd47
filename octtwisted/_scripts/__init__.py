"""
Private. Test scripts: loading a script file and deciding how its steps are
called, the :class:`~octtwisted.Transaction` base class, custom timers, and
the stand-ins for the classic ``oct_turrets`` package.

May import: :mod:`octtwisted._core`. The public names are re-exported by
:mod:`octtwisted`.
"""
