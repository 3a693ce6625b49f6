"""Certificates for the HTTPS tests, and the two ways files change under a running server.

``TestCA`` issues serving certificates for 127.0.0.1/localhost, each with its own serial and
subject, so a test can tell which one a handshake got. ``SecretVolume`` lays the files out as
the kubelet does for a Secret volume (``tls.crt`` -> ``..data/tls.crt``, ``..data`` -> a
timestamped directory) and rotates them the way it does: a new directory, then an atomic
rename of the ``..data`` symlink (kubelet's ``AtomicWriter``).
"""

from __future__ import annotations

import datetime
import ipaddress
import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harness.certs import certificate_authority

_DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class Issued:
    cert_pem: bytes
    key_pem: bytes
    serial: int
    common_name: str


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class TestCA:
    """A private CA; ``pem`` is what a client trusts (``verify=`` in httpx)."""

    __test__ = False  # not a pytest test class

    def __init__(self, name: str = "crr-gateway-tls-test-ca") -> None:
        self._cert, self._key = certificate_authority(name)
        self._name = self._cert.subject
        self.pem = self._cert.public_bytes(serialization.Encoding.PEM)
        self._serials = itertools.count(1000)

    def write(self, path: Path) -> Path:
        path.write_bytes(self.pem)
        return path

    def issue(self, common_name: str) -> Issued:
        """A serving certificate for 127.0.0.1 and localhost, with a serial of its own."""
        key = ec.generate_private_key(ec.SECP256R1())
        serial = next(self._serials)
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - _DAY)
            .not_valid_after(now + _DAY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        return Issued(
            cert.public_bytes(serialization.Encoding.PEM), _pem_key(key), serial, common_name
        )


class SecretVolume:
    """A directory laid out and updated as the kubelet does for a ``kubernetes.io/tls`` Secret."""

    def __init__(self, root: Path, first: Issued) -> None:
        self.root = root
        self._generations = itertools.count()
        root.mkdir(parents=True, exist_ok=True)
        self._publish(first)
        for name in ("tls.crt", "tls.key"):
            (root / name).symlink_to(Path("..data") / name)

    @property
    def cert(self) -> Path:
        return self.root / "tls.crt"

    @property
    def key(self) -> Path:
        return self.root / "tls.key"

    def rotate(self, issued: Issued) -> None:
        """Both files change at once, as the kubelet swaps ``..data``."""
        self._publish(issued)

    def _publish(self, issued: Issued) -> None:
        generation = self.root / f"..2026_01_01_00_00_{next(self._generations):02d}"
        generation.mkdir()
        (generation / "tls.crt").write_bytes(issued.cert_pem)
        (generation / "tls.key").write_bytes(issued.key_pem)
        staged = self.root / "..data_tmp"
        staged.symlink_to(generation.name)
        os.rename(staged, self.root / "..data")  # atomic: readers see old or new, never half


def replace_file(path: Path, content: bytes) -> None:
    """Replace one file as most tools do: write beside it, then rename over it."""
    staged = path.with_name(path.name + ".new")
    staged.write_bytes(content)
    os.replace(staged, path)


def peer_serial(connection: Any) -> int:
    """The serial of the certificate the server presented on ``connection`` (an
    ``ssl.SSLObject``, ``ssl.SSLSocket``, or the ``_ssl._SSLSocket`` httpcore exposes)."""
    der = connection.getpeercert(True)  # the C object takes no keywords
    assert der is not None, "the server presented no certificate"
    return x509.load_der_x509_certificate(der).serial_number
