"""Each transaction GETs the config's ``url`` with self.fast_http (a hostile target: see tests/hostilehttp.py)."""

import octtwisted


class Transaction(octtwisted.Transaction):
    async def run(self):
        await self.fast_http.get(self.config["url"])
