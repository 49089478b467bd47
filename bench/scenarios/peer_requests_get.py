"""oct-turrets, scenario http: one GET per transaction, a requests.Session per cannon."""

import requests
from oct_turrets.base import BaseTransaction


class Transaction(BaseTransaction):
    def __init__(self, config, context=None):
        super(Transaction, self).__init__(config, context)
        self.url = config["target_url"]
        self.session = requests.Session()

    def run(self):
        response = self.session.get(self.url, timeout=10)
        response.content
        if response.status_code != 200:
            raise RuntimeError("HTTP %d" % response.status_code)
