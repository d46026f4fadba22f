"""Chaos suite of ringback: infrastructure (pgcluster, hosts, multihost) and scenarios."""
