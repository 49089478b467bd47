"""
oct-twisted: a load-testing turret for OCT, built on Twisted.

Test scripts subclass :class:`Transaction`. The turret itself runs as
``twistd -n oct-turret -c config.json``.
"""

from octtwisted._scripts.timers import CustomTimer, timed
from octtwisted._scripts.transaction import Transaction, record_request

__all__ = ["CustomTimer", "Transaction", "record_request", "timed"]
__version__ = "0.1.0"
