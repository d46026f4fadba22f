"""Named SIP trunks from a TOML file (``RINGBACK_SIP_TRUNKS``; docs/sip-trunks.md).

Every ``[trunks.NAME]`` table is one trunk: a :class:`~ringback.config.SipSettings` (each of
its fields is a key of the same name, so every setting of the sip dialer is a per-trunk
setting; what the table does not set comes from the ``RINGBACK_SIP_*`` variables) plus how
calls are chosen for it and its limits. ``proxy = "host"`` / ``"host:port"`` is short for
``proxy_host`` and ``proxy_port`` (a name without a port is looked up with NAPTR/SRV). A
``[defaults]`` table holds keys every trunk gets unless it sets them.

Without a trunks file the ``RINGBACK_SIP_*`` variables make one trunk named ``default``.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ringback.config import T38_EC_MODES, T38_MODES, ConfigError, SipSettings, proxy_port_missing
from ringback.domain.digits import ascii_digits

#: settings of the whole process (one SIP socket), not of a trunk
PROCESS_WIDE = frozenset({"local_host", "local_port", "dns_servers", "trunks_file"})
#: keys of a trunk that are not SipSettings fields
TRUNK_KEYS = frozenset(
    {
        "proxy",
        "queues",
        "prefixes",
        "max_concurrent_calls",
        "max_calls_per_second",
        "caller_id_allowed",
        "default",
    }
)


@dataclass(frozen=True, slots=True)
class Trunk:
    """One trunk: its SIP settings, which calls it takes, and its limits."""

    name: str
    settings: SipSettings
    queues: tuple[int, ...] = ()  # queue ids whose calls go here first
    prefixes: tuple[str, ...] = ()  # called-number prefixes (longest match wins)
    max_concurrent_calls: int | None = None  # None: no limit
    max_calls_per_second: float | None = None
    #: caller-id prefixes a task may send on this trunk; another is replaced by the trunk's
    #: ``caller_id`` (empty: any caller id goes out as the task gives it)
    caller_id_allowed: tuple[str, ...] = ()
    default: bool = False

    @property
    def catch_all(self) -> bool:
        """A trunk without selection rules takes any call."""
        return not self.queues and not self.prefixes

    def caller_id(self, requested: str | None) -> str | None:
        """The caller id this trunk sends for a task's ``requested`` one."""
        fallback = self.settings.caller_id
        if requested is None:
            return fallback
        if self.caller_id_allowed and not requested.lstrip().startswith(self.caller_id_allowed):
            return fallback or requested
        return requested


def trunk_address(trunk: Trunk) -> tuple[str, int | None, str | None]:
    """What ``SipResolver.targets`` takes for ``trunk``: host, port (None: NAPTR/SRV) and
    the transport its settings fix (None: DNS chooses)."""
    settings = trunk.settings
    return (
        settings.proxy_host,
        None if settings.srv else settings.proxy_port,
        getattr(settings, "transport", None),
    )


def default_trunk(settings: SipSettings) -> Trunk:
    """The one trunk the ``RINGBACK_SIP_*`` variables describe."""
    return Trunk(name="default", settings=settings, default=True)


def trunks_for(settings: SipSettings) -> list[Trunk]:
    """The trunks file's trunks when ``settings`` names one, else the ``default`` trunk."""
    if settings.trunks_file is None:
        return [default_trunk(settings)]
    return load_trunks(settings.trunks_file, settings)


def load_trunks(path: Path, base: SipSettings) -> list[Trunk]:
    """The trunks of the file at ``path``, in the file's order; ConfigError naming the file,
    the trunk and the key for anything wrong."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"trunks file {path}: cannot read it ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"trunks file {path}: not valid TOML ({exc})") from None
    unknown = set(data) - {"trunks", "defaults"}
    if unknown:
        raise ConfigError(
            f"trunks file {path}: unknown table or key {sorted(unknown)[0]!r} "
            "(use [trunks.NAME] tables and an optional [defaults] table)"
        )
    defaults = data.get("defaults", {})
    tables = data.get("trunks")
    if not isinstance(defaults, dict):
        raise ConfigError(f"trunks file {path}: [defaults] must be a table")
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(f"trunks file {path}: no trunk (add a [trunks.NAME] table)")
    trunks = []
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ConfigError(f"trunks file {path}: trunks.{name} must be a table")
        trunks.append(_trunk(path, name, {**defaults, **table}, base))
    if sum(t.default for t in trunks) > 1:
        raise ConfigError(f"trunks file {path}: more than one trunk has default = true")
    return trunks


def _trunk(path: Path, name: str, table: dict[str, Any], base: SipSettings) -> Trunk:
    def fail(key: str, why: str) -> ConfigError:
        return ConfigError(f"trunks file {path}: trunk {name!r}, key {key!r}: {why}")

    hints = typing.get_type_hints(SipSettings)
    changes: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in table.items():
        if key in TRUNK_KEYS:
            extra[key] = value
        elif key in PROCESS_WIDE:
            raise fail(key, "a setting of the whole process: set it with RINGBACK_SIP_* instead")
        elif key in hints:
            try:
                changes[key] = _convert(value, hints[key])
            except (TypeError, ValueError) as exc:
                raise fail(key, str(exc)) from None
        else:
            raise fail(key, "unknown key (see docs/sip-trunks.md)")
    if "proxy" in extra:
        proxy = extra.pop("proxy")
        if not isinstance(proxy, str) or not proxy.strip():
            raise fail("proxy", "use a string: host or host:port")
        host, _, port = proxy.rpartition(":")
        if not _ or "]" in port or not ascii_digits(port):
            host, port = proxy, ""
        if port and not 0 < int(port) < 65536:
            raise fail("proxy", "the port is not 1-65535")
        changes.setdefault("proxy_host", host.strip("[]"))
        changes.setdefault("proxy_port", int(port) if port else 5060)
        changes.setdefault("srv", proxy_port_missing(proxy))
    settings = dataclasses.replace(base, **changes)
    if not settings.proxy_host:
        raise fail("proxy", "missing: every trunk needs proxy = 'host' or 'host:port'")
    if not 0 < settings.proxy_port < 65536:
        raise fail("proxy_port", "use a port from 1 to 65535")
    first, last = settings.rtp_ports
    if not 1024 <= first < last <= 65535:
        raise fail("rtp_ports", "use two ports from 1024 to 65535, the first lower")
    if settings.max_ring_timeout_s <= 0:
        raise fail("max_ring_timeout_s", "use a number greater than 0")
    if settings.t38 not in T38_MODES:
        raise fail("t38", f"use one of {', '.join(T38_MODES)}")
    if settings.t38_ec not in T38_EC_MODES:
        raise fail("t38_ec", f"use one of {', '.join(T38_EC_MODES)}")
    if (settings.username is None) != (settings.password is None):
        raise fail("password" if settings.password is None else "username", "set both or neither")
    return Trunk(
        name=name,
        settings=settings,
        queues=tuple(_items(extra, "queues", int, fail)),
        prefixes=tuple(_items(extra, "prefixes", str, fail)),
        max_concurrent_calls=_limit(extra, "max_concurrent_calls", int, fail),
        max_calls_per_second=_limit(extra, "max_calls_per_second", float, fail),
        caller_id_allowed=tuple(_items(extra, "caller_id_allowed", str, fail)),
        default=_flag(extra, "default", fail),
    )


def _items(extra: dict[str, Any], key: str, kind: type, fail: Any) -> list[Any]:
    value = extra.get(key, [])
    if not isinstance(value, list) or not all(
        isinstance(v, kind) and not isinstance(v, bool) for v in value
    ):
        raise fail(key, f"use a list of {'numbers' if kind is int else 'strings'}")
    return value


def _limit(extra: dict[str, Any], key: str, kind: type, fail: Any) -> Any:
    value = extra.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise fail(key, "use a number greater than 0")
    if kind is int and not isinstance(value, int):
        raise fail(key, "use a whole number")
    return kind(value)


def _flag(extra: dict[str, Any], key: str, fail: Any) -> bool:
    value = extra.get(key, False)
    if not isinstance(value, bool):
        raise fail(key, "use true or false")
    return value


def _convert(value: Any, hint: Any) -> Any:
    """``value`` (from TOML) as a SipSettings field typed ``hint``; TypeError/ValueError."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(options) != 1:
            raise TypeError("this setting cannot be set in a trunks file (not supported)")
        return _convert(value, options[0])
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, list):
            raise TypeError("use a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0]) for v in value)
        if len(value) != len(args):
            raise ValueError(f"use a list of {len(args)} values")
        return tuple(_convert(v, a) for v, a in zip(value, args, strict=True))
    if origin is typing.Literal:
        if value not in typing.get_args(hint):
            raise ValueError(f"use one of {', '.join(map(str, typing.get_args(hint)))}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError("use true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("use a whole number")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError("use a number")
        if value < 0:
            raise ValueError("use a number of 0 or more")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError("use a string")
        return value
    if hint is Path:
        if not isinstance(value, str):
            raise TypeError("use a path (a string)")
        return Path(value)
    if isinstance(hint, type) and issubclass(hint, str):  # a str enum
        if not isinstance(value, str):
            raise TypeError("use a string")
        return hint(value)
    raise TypeError("this setting cannot be set in a trunks file (not supported)")
