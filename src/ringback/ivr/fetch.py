"""HTTP for the IVR: answer URLs, Redirect and ``action`` targets, GetJSON, Play of a URL.

:class:`HttpFetcher` tries a comma fallback list in order (reference A7): the next URL is tried
when one cannot be reached, times out, is refused by the address guard, answers with a status
other than 2xx, or sends more than ``max_bytes``. Each request is bounded by
``FetchConfig.timeout_s`` (all of it: connecting, sending, reading). Redirects (3xx) are not
followed; they count as a failure of that URL. Every request goes through
:class:`ringback.outbound.OutboundClient`, the one client with the address guard: the host is
resolved once, every address checked (private, loopback, link-local and metadata addresses,
in any spelling, are refused unless ``allow_private``) and only those addresses connected to.

A form is sent as ``application/x-www-form-urlencoded`` in the body of a POST, or as the query
string of a GET.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlencode

from ringback.config import Settings

if TYPE_CHECKING:  # aiohttp (~8 MiB) is imported by a fetch: a worker without IVRs never needs it
    from ringback.outbound import OutboundClient

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_MAX_BYTES = 1024 * 1024
USER_AGENT = "ringback-ivr"


@dataclass(frozen=True, slots=True)
class FetchConfig:
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_bytes: int = DEFAULT_MAX_BYTES
    allow_private: bool = False  # tests and closed networks only

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchConfig:
        """``RINGBACK_IVR_FETCH_TIMEOUT``, ``RINGBACK_IVR_FETCH_MAX_BYTES`` and
        ``RINGBACK_ALLOW_PRIVATE`` (or ``RINGBACK_WEBHOOK_ALLOW_PRIVATE``)."""
        return cls(
            timeout_s=settings.ivr_fetch_timeout,
            max_bytes=settings.ivr_fetch_max_bytes,
            allow_private=settings.webhook_allow_private,
        )


@dataclass(frozen=True, slots=True)
class FetchResult:
    url: str  # the URL that answered
    status: int
    body: bytes
    content_type: str
    failures: tuple[str, ...] = ()  # the URLs tried before it, each with why it failed


class FetchError(Exception):
    """No URL of the list answered; the message says why for each one."""

    def __init__(self, failures: Sequence[str]) -> None:
        super().__init__("; ".join(failures) if failures else "no URL to fetch")
        self.failures = tuple(failures)


class Fetcher(Protocol):
    async def fetch(
        self,
        urls: Sequence[str],
        *,
        method: str = "POST",
        form: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
    ) -> FetchResult: ...


class _Failed(Exception):
    pass


#: headers that sign a request: ``signer(method, url, body)`` (see :mod:`ringback.ivr.signing`);
#: ``url`` is the URL as sent (with a GET's query string), ``body`` the bytes sent
Signer = Callable[[str, str, bytes], Mapping[str, str]]


class HttpFetcher:
    """The :class:`Fetcher` on aiohttp (a short-lived session per list of URLs)."""

    def __init__(self, config: FetchConfig | None = None, *, signer: Signer | None = None) -> None:
        self.config = config if config is not None else FetchConfig()
        self.signer = signer

    async def fetch(
        self,
        urls: Sequence[str],
        *,
        method: str = "POST",
        form: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
    ) -> FetchResult:
        """The reply of the first URL of ``urls`` that answers 2xx; FetchError if none does."""
        from ringback.outbound import OutboundClient

        if method not in ("GET", "POST"):
            raise ValueError(f"method must be GET or POST, not {method!r}")
        limit = max_bytes if max_bytes is not None else self.config.max_bytes
        failures: list[str] = []
        async with OutboundClient(
            allow_private=self.config.allow_private,
            limit=4,
            force_close=True,
            headers={"User-Agent": USER_AGENT},
        ) as client:
            for url in urls:
                try:
                    status, body, content_type = await self._one(
                        client, url, method, dict(form or {}), limit
                    )
                except _Failed as exc:
                    failures.append(f"{url}: {exc}")
                    continue
                return FetchResult(url, status, body, content_type, tuple(failures))
        raise FetchError(failures)

    async def _one(
        self,
        client: OutboundClient,
        url: str,
        method: str,
        form: dict[str, str],
        limit: int,
    ) -> tuple[int, bytes, str]:
        import aiohttp
        from yarl import URL

        from ringback.outbound import BlockedAddress, UnresolvableHost

        headers: dict[str, str] = {}  # extra request headers for this URL
        try:
            async with asyncio.timeout(self.config.timeout_s):  # all of it, resolving included
                target = URL(url).with_fragment(None)
                sent = b"" if method == "GET" else urlencode(form).encode()
                if method == "GET" and form:
                    target = target.extend_query(form)
                if self.signer is not None:  # exactly what is sent is signed
                    headers.update(self.signer(method, str(target), sent))
                if method == "POST":
                    headers["Content-Type"] = "application/x-www-form-urlencoded"
                request = client.request(
                    method, str(target), data=sent if method == "POST" else None, headers=headers
                )
                async with request as response:
                    if not 200 <= response.status < 300:
                        raise _Failed(f"HTTP {response.status}")
                    if response.content_length is not None and response.content_length > limit:
                        raise _Failed(f"the reply is larger than {limit} bytes")
                    body = bytearray()
                    while chunk := await response.content.read(64 * 1024):
                        body += chunk
                        if len(body) > limit:
                            raise _Failed(f"the reply is larger than {limit} bytes")
                    return response.status, bytes(body), response.content_type
        except _Failed:
            raise
        except BlockedAddress as exc:
            raise _Failed(f"refused: {exc}") from None
        except TimeoutError:
            raise _Failed(f"no reply within {self.config.timeout_s:g} s") from None
        except UnresolvableHost as exc:
            raise _Failed(str(exc)) from None
        except aiohttp.ClientConnectorError as exc:
            cause = exc.os_error
            raise _Failed(f"cannot connect: {cause.strerror or cause}") from None
        except (aiohttp.ClientError, ValueError, asyncio.IncompleteReadError) as exc:
            raise _Failed(str(exc) or type(exc).__name__) from None


class OfflineFetcher:
    """A :class:`Fetcher` for runs without network (``ringback ivr run --offline``, the test
    corpus): every URL fails with ``HTTP fetching is switched off``, so GetJSON gives null and
    a Redirect or action URL falls back to the next target, exactly as if the servers were
    down."""

    async def fetch(
        self,
        urls: Sequence[str],
        *,
        method: str = "POST",
        form: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
    ) -> FetchResult:
        raise FetchError([f"{url}: HTTP fetching is switched off" for url in urls])
