"""
Private. The values every layer shares: the validated config, the messages
exchanged with the HQ (orders, status, results), the injected clocks, the
protocols between the firing layer and the HQ link, the load model and
the thresholds (parsed from the config, evaluated on a summary), Deferred
helpers and the log namespaces.

May import: nothing of oct-twisted (only Twisted, attrs and the standard
library). Every other layer may import it.
"""
