"""
Private. The link to the OCT HQ: the wire format of orders, status and
result frames, the ZeroMQ sockets, their options (IPv6, the heartbeats that notice a
dead HQ machine) and their connection monitor, the result
queue (batching, retry on ``zmq.Again``, backpressure waiters, dropped
counts), and the in-process sink of standalone runs.

May import: :mod:`octtwisted._core`. Never the firing, script or statistics
layers: the turret reaches this layer only through the protocols of
:mod:`octtwisted._core.interfaces`.
"""
