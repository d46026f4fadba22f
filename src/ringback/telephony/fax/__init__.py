"""The fax engine: T.30 over G.711 audio through libspandsp (``spandsp.py``: the ctypes
binding; ``endpoint.py``: :class:`FaxEndpoint`, :class:`FaxResult`, :func:`exchange`;
``g711.py``: the codec; ``documents.py``: documents in and out as fax pages). See
``docs/fax.md``."""
