"""
Each transaction GETs the config's ``url`` with self.fast_http; with a
``request_timeout`` key, that is the request's own timeout (else the
client's default).
"""

import octtwisted


class Transaction(octtwisted.Transaction):
    async def run(self):
        timeout = self.config.get("request_timeout")
        if timeout is None:
            await self.fast_http.get(self.config["url"])
        else:
            await self.fast_http.get(self.config["url"], timeout=timeout)
