"""One GET of config["target_url"] per transaction, with self.fast_http or self.http (treq), as config["client"] says."""

import octtwisted


class Transaction(octtwisted.Transaction):
    async def run(self):
        url = self.config["target_url"]
        if self.config["client"] == "fast_http":
            response = await self.fast_http.get(url)
        else:
            response = await self.http.get(url)
            await response.content()
        if response.code != 200:
            raise RuntimeError(f"HTTP {response.code}")
