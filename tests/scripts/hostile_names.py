"""
Request names holding markup, end to end: three requests per transaction
to config["target_base"] through self.fast_http: one named with a
``<script>``, one answered 500 named with an ``onerror`` image (the
transaction still passes), and one default-named whose path holds a
``<b>`` element.
"""

import octtwisted

SCRIPT_NAME = "<script>document.title='pwned'</script>"
IMAGE_NAME = '<img src=x onerror="window.__alerted=1"> broken'


class Transaction(octtwisted.Transaction):
    async def run(self):
        base = self.config["target_base"]
        await self.fast_http.get(f"{base}/page", name=SCRIPT_NAME)
        response = await self.fast_http.get(f"{base}/error", name=IMAGE_NAME)
        assert response.code == 500
        await self.fast_http.get(f"{base}/<b>bold</b>")
