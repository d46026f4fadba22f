"""``ringback remote …``: drive a running ringback over its HTTP API (profiles with a URL and
API credentials). These modules talk HTTP only: they import neither the store, the
application layer nor the API app (tests/architecture/test_import_rules.py)."""
