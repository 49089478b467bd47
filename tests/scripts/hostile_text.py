"""
Texts a hostile target controls, carried into every output (issue 26,
item 7): each transaction GETs the config's ``url`` and puts the
response's ``X-Evil`` header and body (markup, control characters,
invalid UTF-8, a megabyte) into its error text: one in three raises a
ValueError, one a TimeoutError whose text begins with ``=`` (a formula),
one succeeds. Every result carries custom timers with a hostile name, and
a negative one; the second also a 100 KB name beginning with ``-``.
"""

from twisted.internet import defer

import octtwisted

TIMER = "=cmd|' /C calc'!A0 <b>x</b>\x1b[31m\u202e\x00"
LONG = "-" + "L" * 100_000


class Transaction(octtwisted.Transaction):
    count = 0

    async def run(self):
        Transaction.count += 1
        n = Transaction.count
        response = await self.fast_http.get(self.config["url"])
        header = response.header("x-evil").decode("utf-8", "surrogateescape")
        body = response.body.decode("utf-8", "surrogateescape")
        self.custom_timers[TIMER] = 0.001
        self.custom_timers["negative"] = -0.5
        if n == 2:
            self.custom_timers[LONG] = 0.002
        if n % 3 == 0:
            raise ValueError(header + body)
        if n % 3 == 1:
            raise defer.TimeoutError(header + body)
