"""Ours, scenario http: one GET with the turret's fast client per transaction."""

import octtwisted


class Transaction(octtwisted.Transaction):
    def setup(self):
        self.url = self.config["target_url"]

    async def run(self):
        response = await self.fast_http.get(self.url)
        if response.code != 200:
            raise RuntimeError(f"HTTP {response.code}")
