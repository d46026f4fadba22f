"""HTTP digest authentication for SIP (RFC 2617 / RFC 8760): MD5 and SHA-256, qop=auth.

:func:`credentials_for` is what every challenged request uses (the first INVITE, REGISTER, our
in-dialog re-INVITEs and UPDATEs): the header and value answering a 401 or 407."""

from __future__ import annotations

import hashlib
import re
import secrets

from sipmessage import Request, Response

_HASHES = {"MD5": "md5", "MD5-SESS": "md5", "SHA-256": "sha256", "SHA-256-SESS": "sha256"}


class DigestError(ValueError):
    """A challenge ringback cannot answer (unknown scheme, algorithm or qop)."""


def _h(algorithm: str, text: str) -> str:
    return hashlib.new(_HASHES[algorithm], text.encode("utf-8")).hexdigest()


_PARAM = re.compile(r'\s*([A-Za-z][\w-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*(?:,|$)')


def parse_challenge(raw: str) -> tuple[str, dict[str, str]]:
    """A ``WWW-Authenticate`` / ``Proxy-Authenticate`` value as (scheme, parameters).

    Quoted values may hold commas (``qop="auth,auth-int"``), which ``sipmessage`` splits.
    """
    scheme, _, rest = raw.strip().partition(" ")
    params: dict[str, str] = {}
    position = 0
    rest = rest.strip()
    while position < len(rest):
        found = _PARAM.match(rest, position)
        if found is None or found.end() == position:
            raise DigestError(f"cannot read the challenge {raw!r}")
        value = found.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[found.group(1).lower()] = value
        position = found.end()
    return scheme, params


def answer_challenge(
    challenge: str,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    nonce_count: int = 1,
    cnonce: str | None = None,
) -> str:
    """The ``Authorization`` / ``Proxy-Authorization`` value answering ``challenge``."""
    scheme, params = parse_challenge(challenge)
    if scheme.lower() != "digest":
        raise DigestError(f"authentication scheme {scheme!r} is not supported")
    realm = params.get("realm")
    nonce = params.get("nonce")
    if realm is None or nonce is None:
        raise DigestError("the digest challenge has no realm or no nonce")
    algorithm = params.get("algorithm", "MD5").upper()
    if algorithm not in _HASHES:
        raise DigestError(f"digest algorithm {algorithm!r} is not supported (MD5, SHA-256)")
    qops = [q.strip().lower() for q in params.get("qop", "").split(",") if q.strip()]
    if qops and "auth" not in qops:
        raise DigestError(f"digest qop {params['qop']!r} is not supported (only auth)")
    cnonce = cnonce or secrets.token_hex(8)
    nc = f"{nonce_count:08x}"
    ha1 = _h(algorithm, f"{username}:{realm}:{password}")
    if algorithm.endswith("-SESS"):
        ha1 = _h(algorithm, f"{ha1}:{nonce}:{cnonce}")
    ha2 = _h(algorithm, f"{method}:{uri}")
    if qops:
        response = _h(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
    else:
        response = _h(algorithm, f"{ha1}:{nonce}:{ha2}")
    fields = [
        f'username="{_quoted(username)}"',
        f'realm="{_quoted(realm)}"',
        f'nonce="{_quoted(nonce)}"',
        f'uri="{_quoted(uri)}"',
        f'response="{response}"',
        f"algorithm={algorithm}",
    ]
    if qops:
        fields += ["qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
    if "opaque" in params:
        fields.append(f'opaque="{_quoted(params["opaque"])}"')
    return "Digest " + ", ".join(fields)


def credentials_for(
    response: Response, request: Request, *, username: str, password: str
) -> tuple[str, str]:
    """The (header, value) to send ``request`` again with after its 401 / 407 ``response``
    (RFC 3261 §22.2, §22.3): ``Authorization`` answering the 401's ``WWW-Authenticate``,
    ``Proxy-Authorization`` the 407's ``Proxy-Authenticate``. The digest covers ``request``'s
    method and Request-URI. :class:`DigestError` when there is nothing ringback can answer."""
    proxy = response.code == 407
    challenge_header = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
    challenge = response.headers.get(challenge_header)
    if challenge is None:
        raise DigestError(f"{response.code} without a {challenge_header} header")
    value = answer_challenge(
        challenge,
        method=request.method,
        uri=str(request.uri),
        username=username,
        password=password,
    )
    return ("Proxy-Authorization" if proxy else "Authorization", value)


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
