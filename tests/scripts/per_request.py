"""
Per-request statistics end to end: four requests per transaction to
config["target_base"], three through self.fast_http (one with a query,
one named, one answered 500: the transaction still passes) and one
through self.http (treq), named.
"""

import itertools

import octtwisted

_ids = itertools.count()


class Transaction(octtwisted.Transaction):
    async def run(self):
        base = self.config["target_base"]
        await self.fast_http.get(f"{base}/fast?id={next(_ids)}")
        await self.fast_http.get(f"{base}/slow", name="slow page")
        response = await self.fast_http.get(f"{base}/error")
        assert response.code == 500
        response = await self.http.get(f"{base}/fast?via=treq", name="treq fast")
        await response.content()
