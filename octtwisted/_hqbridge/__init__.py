"""
Private. The real OCT HQ (``oct`` 0.4.12, of 2017) on today's libraries:
the bridges that give peewee and pandas back the few names oct calls
under their old spelling, and the ``oct-hq`` command, which installs
them in its own process and hands over to oct's entry point. oct's files
are not changed; nothing here runs in a turret.

May import: nothing of oct-twisted (only the standard library, and
peewee, pandas and oct themselves, which the ``hq`` extra installs).
"""
