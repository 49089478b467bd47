"""A non-blocking script whose run returns at once; it echoes the context."""

import octtwisted


class Transaction(octtwisted.Transaction):
    def run(self):
        if self.context.get("fail"):
            raise ValueError("context says fail")
        self.custom_timers["context_keys"] = float(len(self.context))
