"""The HTTP API (FastAPI) under ``/api/ver1.0/``: routers and request/response schemas only."""
