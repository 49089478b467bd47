"""
oct-twisted's tests (run with trial: ``make test``).

Hypothesis's two timing checks are off for every test: its deadline (a
single example slower than 200 ms) and its "too slow" health check
(generating inputs slowly) measure how busy the machine is, not the code,
and fail a test now and then on a loaded 2-core machine. The examples
tried, and what each test asserts about them, stay the same.
"""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "octtwisted", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("octtwisted")
