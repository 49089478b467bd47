"""
Making a cannon's transaction: ``Transaction(config, context)``, or
``Transaction()`` for the oldest classic scripts, with the run's HTTP
clients attached to those that are :class:`~octtwisted.Transaction`\\ s.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from octtwisted._scripts.loading import takes_no_arguments
from octtwisted._scripts.transaction import RunClients, attach_clients


class TransactionFactory:
    """
    Called with no arguments, makes one transaction; each gets its own copy
    of the context.

    :param config: the turret's whole config.json, as given to scripts.
    :param context: the HQ's transaction context at the run's start.
    :param clients: the run's HTTP clients (``self.http``, ``self.fast_http``).
    """

    def __init__(
        self,
        transaction_class: Callable[..., Any],
        config: Mapping[str, Any],
        context: Mapping[str, Any],
        clients: RunClients,
    ) -> None:
        self._class = transaction_class
        self._config = config
        self._context = dict(context)
        self._clients = clients
        self._no_arguments = takes_no_arguments(transaction_class)  # type: ignore[arg-type]

    def __call__(self) -> Any:
        if self._no_arguments:
            transaction = self._class()
        else:
            transaction = self._class(self._config, dict(self._context))
        attach_clients(transaction, self._clients)
        return transaction
