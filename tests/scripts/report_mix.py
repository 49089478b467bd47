"""A script for reports: a custom timer, and one transaction in ten fails
with an error text full of markup."""

import octtwisted

ERROR = '<script>alert("x")</script> & <b>bold</b>'


class Transaction(octtwisted.Transaction):
    count = 0

    def run(self):
        Transaction.count += 1
        self.custom_timers["login"] = 0.002
        if Transaction.count % 10 == 0:
            raise ValueError(ERROR)
