"""The chaos suite of ringback: kill -9, database and webhook outages, checked against the
simulator's truth log. Run it with ``python -m chaos`` (``make chaos``)."""
