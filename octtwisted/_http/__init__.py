"""
Private. The HTTP clients offered to scripts: the run's shared treq client
(``self.http``) and the fast keep-alive client (``self.fast_http``). The
fast client's public names are re-exported by :mod:`octtwisted.fasthttp`.

May import: :mod:`octtwisted._core`.
"""
