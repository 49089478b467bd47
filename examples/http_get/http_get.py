"""
A non-blocking HTTP test script: every transaction GETs the target with the
turret's shared treq client and reads the whole body.
"""

from __future__ import annotations

import time

import octtwisted


class Transaction(octtwisted.Transaction):
    def setup(self) -> None:
        self.url = self.config["target_url"]

    async def run(self) -> None:
        began = time.perf_counter()
        response = await self.http.get(self.url)
        self.custom_timers["headers"] = time.perf_counter() - began
        body = await response.content()
        if response.code != 200:
            raise RuntimeError(f"HTTP {response.code}: {body[:80]!r}")
