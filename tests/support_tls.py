"""Test certificates made with the openssl CLI into a test's directory: a CA, and a server or
client certificate it signs for 127.0.0.1 and localhost."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from support import require_program


@dataclass(frozen=True)
class Pem:
    cert: Path
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    exe = require_program("openssl", "openssl")
    subprocess.run([exe, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(directory: Path, name: str = "ringback test CA") -> Pem:
    directory.mkdir(parents=True, exist_ok=True)
    key, cert = (
        directory / f"{name.replace(' ', '_')}.key",
        directory / f"{name.replace(' ', '_')}.pem",
    )
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
        cwd=directory,
    )  # fmt: skip
    return Pem(cert, key)


def make_cert(
    directory: Path, ca: Pem, name: str, *, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
) -> Pem:
    """A leaf certificate signed by ``ca`` whose subjectAltName lists ``hosts``."""
    key, csr, cert = directory / f"{name}.key", directory / f"{name}.csr", directory / f"{name}.pem"
    alt = ",".join(f"IP:{h}" if h[0].isdigit() else f"DNS:{h}" for h in hosts)
    ext = directory / f"{name}.ext"
    ext.write_text(
        f"subjectAltName={alt}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n"
    )
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}", cwd=directory,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext), cwd=directory,
    )  # fmt: skip
    return Pem(cert, key)
