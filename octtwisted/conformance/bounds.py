"""
The kit's bounds: how long it waits for each thing, and the cannons and
rampup of the turret config it writes (:class:`Bounds`); :data:`QUICK`,
short bounds for turrets known to be quick.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Bounds:
    """
    How long the kit waits for each thing (seconds), and the turret config
    it writes (cannons, rampup). Every wait of the kit is one of these.
    """

    start: float = 20.0  # launch -> first 'ready'
    handshake: float = 5.0  # repeated status_request -> an answer
    answer: float = 1.5  # one status_request -> its answer
    storm: float = 2.0  # how long the status_request storm lasts
    results: float = 10.0  # start -> 'Running' and results
    stop: float = 10.0  # stop -> 'ready', kill -> 'Killed'
    quiet: float = 1.0  # watched for stray results or orders obeyed
    exit: float = 10.0  # kill -> the process exits
    sigterm: float = 15.0  # SIGTERM -> the process exits
    grace: float = 5.0  # at the end: SIGTERM, then SIGKILL after this
    cannons: int = 4
    rampup: float = 2.0

    def worst_case(self) -> float:
        """
        An upper bound of one run of the kit (its sessions run in
        parallel; the longest is ``main``).
        """
        return (
            self.start
            + 4 * self.handshake
            + 4 * self.answer
            + self.storm
            + 2
            + 2 * self.results
            + self.rampup * 1.3
            + 2 * self.stop
            + 2 * self.quiet
            + self.exit
            + self.grace
            + 10
        )


#: Short bounds, for turrets known to be quick (the kit's own tests).
QUICK = Bounds(
    start=15.0, handshake=3.0, answer=1.5, storm=1.0, results=6.0, stop=6.0,
    quiet=0.6, exit=5.0, sigterm=8.0, grace=2.0, cannons=4, rampup=1.0,
)
