"""The fax engine: T.30 through libspandsp 0.0.6 (``spandsp.py``: the ctypes binding), over
G.711 audio (``endpoint.py``: :class:`FaxEndpoint`, :func:`exchange`; ``g711.py``: the codec)
or T.38 IFP packets (``t38.py``: :class:`T38Endpoint`, :func:`t38_exchange`); results
(``result.py``: :class:`FaxResult`, :class:`ReceivedFax`); documents in and out as fax pages
(``documents.py``); an in-process far fax machine for the simulator (``loopback.py``). See
``docs/fax.md``."""
