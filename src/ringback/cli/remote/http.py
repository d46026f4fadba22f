"""A small typed HTTP client of ringback's API, for the remote CLI (httpx).

Every failure becomes a :class:`RemoteError`: one line saying what happened and what to do,
the API's ``details`` (``loc``, ``msg``), and the exit code (1: the server refused the request;
2: the server cannot be reached or the set-up is wrong: URL, TLS, credentials, a server
error). A bearer token is fetched on first use, kept in memory for the run, and fetched again
once when the server answers 401.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO

from ringback.cli.remote.profiles import Profile

if TYPE_CHECKING:  # imported when a client is made: the commands' --help starts faster
    import httpx

API_PREFIX = "/api/ver1.0"
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 120.0  # a batch of 10,000 tasks takes a few seconds on a busy server
#: the environment variable naming the operator (sent as the Ringback-Operator header)
OPERATOR_ENV = "RINGBACK_OPERATOR"
REFUSED_EXIT = 1
SETUP_EXIT = 2


class RemoteError(Exception):
    def __init__(
        self,
        message: str,
        *,
        error: str = "error",
        details: list[dict[str, Any]] | None = None,
        exit_code: int = REFUSED_EXIT,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error = error
        self.details = details or []
        self.exit_code = exit_code
        self.status = status

    def as_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"error": self.error, "message": self.message}
        if self.details:
            shown["details"] = self.details
        if self.status is not None:
            shown["status"] = self.status
        return shown


def unsupported(what: str) -> RemoteError:
    return RemoteError(
        f"{what} is not supported by this server (its API has no such operation)",
        error="not_supported",
    )


def _transport_error(url: str, exc: httpx.TransportError) -> RemoteError:
    import httpx

    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        message = f"no answer from {url} in time ({text}): is the server overloaded or down?"
    elif "SSL" in text or "CERTIFICATE" in text.upper():
        message = (
            f"TLS failed with {url}: {text} (check the URL's scheme and the server's "
            "certificate; SSL_CERT_FILE names a CA bundle to trust)"
        )
    elif isinstance(exc, httpx.ConnectError):
        message = (
            f"cannot reach {url}: {text} (is 'ringback serve' running there? check the URL "
            "with 'ringback remote profiles')"
        )
    else:
        message = f"the connection to {url} failed: {text}"
    return RemoteError(message, error="unreachable", exit_code=SETUP_EXIT)


def _body(answer: httpx.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def answer_error(answer: httpx.Response, profile: str) -> RemoteError:
    """The error an answer of 400 or more stands for."""
    body = _body(answer)
    status = answer.status_code
    message = str(body.get("message") or body.get("detail") or answer.reason_phrase)
    error = str(body.get("error") or f"http_{status}")
    details = [d for d in body.get("details") or [] if isinstance(d, dict)]
    if status == 401:
        return RemoteError(
            f"the server refused the credentials of profile {profile!r} ({message}): run "
            f"'ringback remote login --profile {profile} …' again",
            error=error,
            exit_code=SETUP_EXIT,
            status=status,
        )
    if status >= 500:
        return RemoteError(
            f"the server failed (HTTP {status}: {message}): see its log; try again later",
            error=error,
            details=details,
            exit_code=SETUP_EXIT,
            status=status,
        )
    return RemoteError(message, error=error, details=details, status=status)


class RemoteClient:
    """The API of one profile. Safe to share between threads (the import's batches)."""

    def __init__(self, profile: Profile, *, connections: int = 8) -> None:
        import httpx

        self.profile = profile
        self.url = profile.url.rstrip("/")
        self.base = f"{API_PREFIX}/client/{profile.client}"
        self._http = httpx.Client(
            base_url=self.url,
            timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            limits=httpx.Limits(max_connections=connections),
        )
        self._token: str | None = None
        self._lock = threading.Lock()
        self._openapi: dict[str, Any] | None = None
        # who operates: kept in the server's audit log beside the credential (optional)
        operator = os.environ.get(OPERATOR_ENV, "").strip()
        self._operator = (
            {"Ringback-Operator": operator[:100]} if operator.isprintable() and operator else {}
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RemoteClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- the token ------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        import httpx

        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise _transport_error(self.url, exc) from None
        except httpx.InvalidURL as exc:
            raise RemoteError(
                f"the URL {self.url!r} is not valid: {exc}", error="bad_url", exit_code=SETUP_EXIT
            ) from None

    def fetch_token(self) -> str:
        answer = self._send(
            "POST",
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.profile.client_id,
                "client_secret": self.profile.client_secret,
            },
        )
        if answer.status_code != 200:
            raise answer_error(answer, self.profile.name)
        token = _body(answer).get("access_token")
        if not isinstance(token, str):
            raise RemoteError(
                f"{self.url} answered the token request without a token: is it a ringback server?",
                error="not_ringback",
                exit_code=SETUP_EXIT,
            )
        return token

    def _bearer(self, stale: str | None = None) -> str:
        with self._lock:
            if self._token is None or self._token == stale:
                self._token = self.fetch_token()
            return self._token

    # --- requests -------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        client_path: bool = True,
    ) -> httpx.Response:
        """``path`` under the client's prefix (``client_path``), with the bearer token; an
        answer of 400 or more raises :class:`RemoteError`."""
        url = f"{self.base}{path}" if client_path else path
        kwargs: dict[str, Any] = {"headers": {**self._operator, **(headers or {})}}
        if json is not None:
            kwargs["json"] = json
        if content is not None:
            kwargs["content"] = content
        if params:
            kwargs["params"] = {k: v for k, v in params.items() if v is not None}
        token = self._bearer()
        for retry in (False, True):
            kwargs["headers"]["Authorization"] = f"Bearer {token}"
            answer = self._send(method, url, **kwargs)
            if answer.status_code == 401 and not retry:
                token = self._bearer(stale=token)  # expired or revoked: one new token
                continue
            break
        if answer.status_code >= 400:
            raise answer_error(answer, self.profile.name)
        return answer

    def download(
        self,
        path: str,
        params: Mapping[str, Any] | None,
        sink: BinaryIO,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """GET ``path`` (under the client's prefix) and write its body to ``sink`` as it
        comes, a chunk at a time (constant memory, any size); ``progress`` gets the bytes
        written so far after each chunk. Returns the bytes written."""
        import httpx

        url = f"{self.base}{path}"
        query = {k: v for k, v in (params or {}).items() if v is not None}
        token = self._bearer()
        for retry in (False, True):
            headers = {**self._operator, "Authorization": f"Bearer {token}"}
            try:
                with self._http.stream("GET", url, params=query, headers=headers) as answer:
                    if answer.status_code == 401 and not retry:
                        token = self._bearer(stale=token)
                        continue
                    if answer.status_code >= 400:
                        answer.read()
                        raise answer_error(answer, self.profile.name)
                    written = 0
                    for chunk in answer.iter_bytes():
                        sink.write(chunk)
                        written += len(chunk)
                        if progress is not None:
                            progress(written)
                    return written
            except httpx.TransportError as exc:
                raise _transport_error(self.url, exc) from None
        raise RemoteError("the server refused the token twice", exit_code=SETUP_EXIT)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """:meth:`request`, returning the answer's JSON (None when it has no body)."""
        answer = self.request(method, path, **kwargs)
        if answer.status_code == 204 or not answer.content:
            return None
        try:
            return answer.json()
        except ValueError:
            raise RemoteError(
                f"{method} {path}: the server answered {answer.status_code} without JSON",
                error="bad_answer",
                exit_code=SETUP_EXIT,
            ) from None

    def openapi(self) -> dict[str, Any]:
        """The server's OpenAPI document (what operations it has), fetched once."""
        if self._openapi is None:
            answer = self._send("GET", "/openapi.json")
            self._openapi = _body(answer) if answer.status_code == 200 else {}
        return self._openapi

    def has_operation(self, method: str, path_suffix: str) -> bool:
        """Whether the server has ``METHOD …path_suffix`` under the client's prefix."""
        paths: dict[str, Any] = self.openapi().get("paths") or {}
        return any(
            path.endswith(path_suffix) and method.lower() in ops for path, ops in paths.items()
        )

    def whoami(self) -> int:
        """The client number the credentials speak for (``GET /oauth/clients/self``)."""
        token = self._bearer()
        answer = self._send(
            "GET", "/oauth/clients/self", headers={"Authorization": f"Bearer {token}"}
        )
        if answer.status_code == 404:
            raise RemoteError(
                "this server does not say which client the credentials are for (no GET "
                "/oauth/clients/self): pass --client NUMBER (the 'id' of 'ringback client "
                "create')",
                error="not_supported",
                exit_code=SETUP_EXIT,
            )
        if answer.status_code != 200:
            raise answer_error(answer, self.profile.name)
        number = _body(answer).get("id")
        if not isinstance(number, int):
            raise RemoteError("GET /oauth/clients/self answered without an id", exit_code=2)
        return number
