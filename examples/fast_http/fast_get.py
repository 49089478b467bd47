"""
A non-blocking HTTP test script using the turret's fast client: every
transaction GETs the target; the response's body is read before the
Deferred fires, and the timeout covers it.
"""

from __future__ import annotations

import octtwisted


class Transaction(octtwisted.Transaction):
    async def run(self) -> None:
        response = await self.fast_http.get(self.config["target_url"], timeout=10)
        if response.code != 200:
            raise RuntimeError(f"HTTP {response.code}: {response.body[:80]!r}")
