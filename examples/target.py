"""
A small HTTP target for trying the turret locally: a twisted.web server on
127.0.0.1 that answers every GET after a little random latency (1 to 20 ms).

    python examples/target.py --port 8080

It prints ``listening on http://127.0.0.1:PORT/`` once it is ready (port 0
picks a free port).
"""

from __future__ import annotations

import argparse
import random
import sys

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.web import resource, server


class SlightlySlow(resource.Resource):
    isLeaf = True

    def __init__(self, low: float, high: float) -> None:
        super().__init__()
        self._low = low
        self._high = high

    def render_GET(self, request: server.Request) -> object:
        def answer() -> None:
            request.setHeader(b"content-type", b"application/json")
            request.write(b'{"ok": true}')
            request.finish()

        delay = random.uniform(self._low, self._high)
        waiting = deferLater(reactor, delay, answer)
        request.notifyFinish().addErrback(lambda _: waiting.cancel())
        waiting.addErrback(lambda _: None)
        return server.NOT_DONE_YET


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--min-latency", type=float, default=0.001)
    parser.add_argument("--max-latency", type=float, default=0.020)
    args = parser.parse_args()
    site = server.Site(SlightlySlow(args.min_latency, args.max_latency))
    site.noisy = False
    port = reactor.listenTCP(args.port, site, interface="127.0.0.1")
    print(f"listening on http://127.0.0.1:{port.getHost().port}/", flush=True)
    reactor.run()


if __name__ == "__main__":
    sys.exit(main())
