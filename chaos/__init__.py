"""Chaos suite of ringback: infrastructure (pgcluster, hosts, multihost) and scenarios
(kill -9, database and webhook outages, checked against the simulator's truth log). Run the
scenarios with ``python -m chaos`` (``make chaos``)."""
