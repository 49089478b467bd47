"""A script whose every transaction ends its process at once (os._exit)."""

import os

import octtwisted


class Transaction(octtwisted.Transaction):
    def run(self):
        os._exit(3)
