"""One GET with self.fast_http and one with self.http (treq) per transaction, to config["target_url"]."""

import octtwisted


class Transaction(octtwisted.Transaction):
    async def run(self):
        url = self.config["target_url"]
        response = await self.fast_http.get(url)
        if response.code != 200:
            raise RuntimeError(f"fast_http: HTTP {response.code}")
        response = await self.http.get(url)
        await response.content()
        if response.code != 200:
            raise RuntimeError(f"http: HTTP {response.code}")
