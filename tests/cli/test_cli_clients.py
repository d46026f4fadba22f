"""``ringback client list|disable|enable|delete|rotate-secret`` with ``--json``."""

from __future__ import annotations

from pathlib import Path

from test_cli import ringback


def test_client_commands_list_disable_enable_rotate_and_delete_credentials(
    tmp_path: Path,
) -> None:
    made = ringback(tmp_path, "client", "create", "acme", "--json").json()
    assert made["signing_secret"].startswith("whsec_") and made["secret_version"] == 1
    key = made["client_id"]
    [row] = ringback(tmp_path, "client", "list", "--json").json()
    assert row["client_id"] == key and row["client"] == "acme" and row["status"] == "enabled"
    assert made["client_secret"] not in str(row)
    assert ringback(tmp_path, "client", "disable", key, "--json").json()["status"] == "disabled"
    assert ringback(tmp_path, "client", "list", "--json").json()[0]["disabled_at"]
    assert ringback(tmp_path, "client", "enable", key, "--json").json()["status"] == "enabled"
    rotated = ringback(tmp_path, "client", "rotate-secret", key, "--json").json()
    assert rotated["secret_version"] == 2 and rotated["client_secret"] != made["client_secret"]
    assert rotated["signing_secret"] != made["signing_secret"]
    assert ringback(tmp_path, "client", "delete", key, "--json").json()["deleted"] is True
    assert ringback(tmp_path, "client", "list", "--json").json() == []
    missing = ringback(tmp_path, "client", "disable", key)
    assert missing.code == 1 and "no client_id" in missing.stderr
