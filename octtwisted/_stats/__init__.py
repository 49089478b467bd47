"""
Private. Statistics of a run: HDR histograms of the run time and custom
timers, the error tally, the run summary (table and JSON), and the live
progress lines.

May import: :mod:`octtwisted._core`.
"""
