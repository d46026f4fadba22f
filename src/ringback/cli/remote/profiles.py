"""Profiles of the remote CLI: a server's URL and the API credentials to use there.

Kept in ``$XDG_CONFIG_HOME/ringback/profiles.toml`` (else ``~/.config/ringback/profiles.toml``),
written with mode 0600 in a folder of mode 0700, replaced atomically. One table per profile::

    [profiles.default]
    url = "http://127.0.0.1:8080"
    client_id = "…"
    client_secret = "…"
    client = 1
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

#: the profile used when neither ``--profile`` nor ``RINGBACK_PROFILE`` names one
DEFAULT_PROFILE = "default"
FILE_MODE = 0o600
DIR_MODE = 0o700


class ProfileError(Exception):
    """The profile file or the chosen profile cannot be used (a set-up problem)."""


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    url: str
    client_id: str
    client_secret: str
    client: int  # the client's number, in the API's paths

    def shown(self) -> dict[str, str | int]:
        """Everything but the secret."""
        return {
            "name": self.name,
            "url": self.url,
            "client_id": self.client_id,
            "client": self.client,
        }


def profiles_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ringback" / "profiles.toml"


def load_all(path: Path | None = None) -> dict[str, Profile]:
    path = path or profiles_path()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"cannot read the profiles in {path}: {exc}") from None
    found: dict[str, Profile] = {}
    for name, fields in (raw.get("profiles") or {}).items():
        try:
            found[name] = Profile(
                name,
                str(fields["url"]),
                str(fields["client_id"]),
                str(fields["client_secret"]),
                int(fields["client"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfileError(
                f"profile {name!r} in {path} lacks {exc} or has a wrong value: run "
                f"'ringback remote login --profile {name} …' again"
            ) from None
    return found


def choose(name: str | None, path: Path | None = None) -> Profile:
    """The profile named ``name`` (``--profile`` / ``RINGBACK_PROFILE``), else the default."""
    chosen = name or DEFAULT_PROFILE
    profiles = load_all(path)
    if chosen not in profiles:
        where = path or profiles_path()
        known = f" (known: {', '.join(sorted(profiles))})" if profiles else ""
        raise ProfileError(
            f"no profile {chosen!r} in {where}{known}: run 'ringback remote login --url URL "
            f"--client-id KEY --client-secret SECRET"
            + ("" if chosen == DEFAULT_PROFILE else f" --profile {chosen}")
            + "' first"
        )
    return profiles[chosen]


def _toml(profiles: dict[str, Profile]) -> str:
    """TOML of the profiles (strings as JSON strings, which are TOML basic strings)."""
    lines = ["# ringback remote profiles: written by 'ringback remote login'", ""]
    for profile in profiles.values():
        lines += [
            f"[profiles.{json.dumps(profile.name)}]",
            f"url = {json.dumps(profile.url)}",
            f"client_id = {json.dumps(profile.client_id)}",
            f"client_secret = {json.dumps(profile.client_secret)}",
            f"client = {profile.client}",
            "",
        ]
    return "\n".join(lines)


def save(profile: Profile, path: Path | None = None) -> Path:
    """Add or replace ``profile``; the file is only ever readable by its owner."""
    path = path or profiles_path()
    profiles = load_all(path)
    profiles[profile.name] = profile
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # whatever the umask
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(_toml(profiles))
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path
