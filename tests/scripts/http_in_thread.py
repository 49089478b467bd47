"""Misuse: a blocking octtwisted.Transaction that uses self.http in its thread."""

import octtwisted


class Transaction(octtwisted.Transaction):
    blocking = True

    def run(self):
        self.http.get("http://127.0.0.1:9/")
