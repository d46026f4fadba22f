"""Where the console's files are: templates, the stylesheet and scripts, and the vendored
browser libraries (``static/vendor/``: Swagger UI, ReDoc, htmx; versions and licences in its
README.md). Everything is served from the installed package: nothing comes from a CDN."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
#: the URL prefix the static folder is served at
STATIC_URL = "/ui/static"
#: npm package -> version of what ``static/vendor/`` holds
VENDORED = {"swagger-ui-dist": "5.36.0", "redoc": "2.5.4", "htmx.org": "2.0.11"}


def static_url(path: str) -> str:
    """The URL of a file of ``static/`` (``vendor/htmx/htmx.min.js``)."""
    return f"{STATIC_URL}/{path}"
