"""The deployment files ask only for what ringback has: compose services run real commands
with real settings against the image the Dockerfile builds; the Dockerfile installs the Debian
libraries the dialers load; the systemd units start real commands. (Docker does not run on the
machines the tests run on: the image itself is not built here.)"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ringback.cli import app

ROOT = Path(__file__).resolve().parents[2]
SETTING = re.compile(r"\bRINGBACK_[A-Z0-9_]+\b")


def _known_settings() -> set[str]:
    source = "\n".join(p.read_text() for p in (ROOT / "src" / "ringback").rglob("*.py"))
    return set(SETTING.findall(source))


def _runs(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, (command, result.output)


def test_compose_runs_the_database_a_migration_the_api_and_two_workers() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"db", "migrate", "api", "worker"}
    assert services["worker"]["deploy"]["replicas"] == 2
    # the image's HEALTHCHECK asks the API's /healthz: a worker serves no HTTP, so none
    assert services["worker"]["healthcheck"] == {"test": ["NONE"]}
    for name in ("migrate", "api", "worker"):
        service = services[name]
        assert service["build"] == "." and service["image"] == "ringback:latest"
        _runs(service["command"])
        assert set(service["environment"]) <= _known_settings()
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    url = services["api"]["environment"]["RINGBACK_DATABASE_URL"]
    db = services["db"]["environment"]
    assert url == (
        f"postgresql://{db['POSTGRES_USER']}:{db['POSTGRES_PASSWORD']}@db:5432/{db['POSTGRES_DB']}"
    )


def test_the_image_has_the_dialers_libraries_runs_unprivileged_and_serves() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"apt-get install .*libspandsp2", dockerfile)  # fax
    assert "espeak-ng" in dockerfile  # <Speak>
    assert re.search(r"^USER ringback$", dockerfile, re.M)
    assert 'ENTRYPOINT ["ringback"]' in dockerfile and 'CMD ["serve"]' in dockerfile
    assert "/healthz" in dockerfile
    assert set(SETTING.findall(dockerfile)) <= _known_settings()


@pytest.mark.parametrize("unit", ["ringback.service", "ringback-worker@.service"])
def test_the_systemd_units_start_real_commands(unit: str) -> None:
    text = (ROOT / "deploy" / unit).read_text()
    for command in re.findall(r"^Exec\w+=\S*/ringback (.+)$", text, re.M):
        _runs(command.split())
    assert "EnvironmentFile=/etc/ringback/ringback.env" in text
    env = (ROOT / "deploy" / "ringback.env").read_text()
    assert set(SETTING.findall(env)) <= _known_settings()
    verify = shutil.which("systemd-analyze")
    if verify is not None:  # the unit's syntax; the program is not installed at /opt here
        done = subprocess.run(
            [verify, "verify", str(ROOT / "deploy" / unit)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        problems = [
            line for line in done.stderr.splitlines()
            if line.strip() and "is not executable" not in line and "ringback-worker@" not in line
        ]  # fmt: skip
        assert problems == [], done.stderr
