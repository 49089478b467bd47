"""Ours, scenario http: one GET with the shared treq client, body read."""

import octtwisted


class Transaction(octtwisted.Transaction):
    def setup(self):
        self.url = self.config["target_url"]

    async def run(self):
        response = await self.http.get(self.url)
        await response.content()
        if response.code != 200:
            raise RuntimeError(f"HTTP {response.code}")
