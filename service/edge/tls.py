"""HTTPS with a certificate that can be rotated under a running server.

Why the service terminates TLS itself: callers send Kubernetes service-account tokens, which must
not cross the pod network in clear text unless the operator decides so (running plain HTTP
behind a service mesh that encrypts pod-to-pod traffic is that decision: deploy/README.md).

Why it reloads: certificates are short-lived (cert-manager renews at two thirds of their life)
and reach the pod as files that change under it. A Secret volume is updated by the kubelet
writing a new timestamped directory and atomically renaming the ``..data`` symlink that
``tls.crt`` and ``tls.key`` point through; other tools replace the files one after the other.
A restart per renewal would cut long polls and event streams for nothing.

How: uvicorn takes one ``ssl.SSLContext`` for the listening socket and OpenSSL copies the
certificate into each connection when it is accepted, so the context cannot simply be loaded
again. Its ``sni_callback`` runs on every ClientHello (with or without a server name), before
the server picks its certificate, and may hand the connection another context. The callback
``stat``s both files (two system calls, nothing next to a handshake), and when their identity
(device, inode, size, mtime, ctime; ``stat`` follows the ``..data`` symlink) changed it loads
them into a new context, which this and every later handshake use. Connections already open
keep the certificate they were opened with.

A pair that does not load (the certificate replaced and the key not yet, a file half written)
is not used: the last good certificate keeps serving, a warning says why, and the pair is tried
again as soon as the files change once more. At start, nothing loads silently: a missing,
unreadable, encrypted or mismatched file stops the service with a message naming the setting.
"""

from __future__ import annotations

import hashlib
import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from service.config import TLSVersionName

log = logging.getLogger(__name__)

CERT_SETTING = "CRR_GATEWAY_TLS_CERT_FILE"
KEY_SETTING = "CRR_GATEWAY_TLS_KEY_FILE"

TLS_VERSIONS: dict[TLSVersionName, ssl.TLSVersion] = {
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}

_PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
_PEM_CERTIFICATE_END = b"-----END CERTIFICATE-----"
FileIdentity = tuple[int, int, int, int, int]
Identity = tuple[FileIdentity, FileIdentity]


class TLSFilesError(ValueError):
    """The certificate or key cannot serve: the message names the setting and the file."""


@dataclass(frozen=True)
class TLSFiles:
    cert: Path
    key: Path


@dataclass(frozen=True)
class LoadedCertificate:
    context: ssl.SSLContext
    fingerprint: str
    """SHA-256 of the leaf certificate (the first in the file) as ``openssl x509 -fingerprint
    -sha256`` shows it, without colons: what the logs name a certificate by."""


def load_context(files: TLSFiles, minimum: TLSVersionName = "1.2") -> LoadedCertificate:
    """A server context serving ``files``, or ``TLSFilesError`` saying precisely what is wrong."""
    cert = _read(files.cert, CERT_SETTING)
    key = _read(files.key, KEY_SETTING)
    if _PEM_CERTIFICATE not in cert:
        raise TLSFilesError(f"{CERT_SETTING} {files.cert}: no PEM certificate in it")
    if b"ENCRYPTED" in key:
        raise TLSFilesError(
            f"{KEY_SETTING} {files.key}: the private key is encrypted and the service has no "
            "passphrase; give it the unencrypted key (as a kubernetes.io/tls Secret holds it)"
        )
    if b"PRIVATE KEY-----" not in key:
        raise TLSFilesError(f"{KEY_SETTING} {files.key}: no PEM private key in it")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # Explicit, whatever the OpenSSL build's own floor: TLS 1.0 and 1.1 are refused.
    context.minimum_version = TLS_VERSIONS[minimum]
    context.set_alpn_protocols(["http/1.1"])  # what uvicorn speaks; never h2 by accident
    try:
        # The callback stops OpenSSL from prompting on a terminal for a passphrase.
        context.load_cert_chain(files.cert, files.key, password=_no_passphrase)
    except ssl.SSLError as error:
        if error.reason == "KEY_VALUES_MISMATCH":
            raise TLSFilesError(
                f"{KEY_SETTING} {files.key} is not the key of the certificate in "
                f"{CERT_SETTING} {files.cert}"
            ) from error
        raise TLSFilesError(
            f"{CERT_SETTING} {files.cert} with {KEY_SETTING} {files.key}: {error}"
        ) from error
    except OSError as error:  # replaced between the read above and this load
        raise TLSFilesError(f"{files.cert} or {files.key}: {error.strerror}") from error
    return LoadedCertificate(context, _leaf_fingerprint(cert))


def _leaf_fingerprint(pem: bytes) -> str:
    start = pem.index(_PEM_CERTIFICATE)
    end = pem.find(_PEM_CERTIFICATE_END, start) + len(_PEM_CERTIFICATE_END)
    try:
        der = ssl.PEM_cert_to_DER_cert(pem[start:end].decode("ascii"))
    except ValueError:  # OpenSSL loaded it, so only a name for the logs is missing
        return "unknown"
    return hashlib.sha256(der).hexdigest()


class ReloadingCertificate:
    """The listening socket's context, which hands each new connection the certificate the
    files hold now. Build it at start (``TLSFilesError`` if the files cannot serve) and give
    ``context`` to uvicorn. Everything else runs in the event loop's thread, in OpenSSL's
    callback; nothing here blocks except a reload, once per rotation."""

    def __init__(self, files: TLSFiles, minimum: TLSVersionName = "1.2") -> None:
        self._files = files
        self._minimum: TLSVersionName = minimum
        # The identity before the load: if the files change during it, they load again.
        self._loaded: Identity | None
        try:
            self._loaded = self._identity()
        except OSError:
            self._loaded = None  # load_context says precisely what is missing
        loaded = load_context(files, minimum)
        self._serving = loaded.context
        self.fingerprint = loaded.fingerprint
        self._refused: Identity | None = None
        self._last_problem: str | None = None
        self.context = loaded.context
        self.context.sni_callback = self._on_client_hello
        log.info("serving HTTPS with certificate sha256:%s from %s", self.fingerprint, files.cert)

    def refresh(self) -> None:
        """Load the files again if they changed since the last load (or the last refusal)."""
        try:
            current = self._identity()
        except OSError as error:  # a file missing for a moment while a tool replaces it
            self._warn_once(f"cannot stat the certificate files: {error}")
            return
        if current == self._loaded or current == self._refused:
            return
        try:
            loaded = load_context(self._files, self._minimum)
        except TLSFilesError as error:
            self._refused = current
            self._warn_once(f"{error}; still serving the previous certificate")
            return
        # Recorded as they were before the load: if they changed during it, the next
        # handshake loads them again.
        self._serving, self._loaded, self._refused = loaded.context, current, None
        self.fingerprint, self._last_problem = loaded.fingerprint, None
        log.info("certificate files changed: now serving sha256:%s", self.fingerprint)

    def _on_client_hello(
        self, connection: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext
    ) -> None:
        try:
            self.refresh()
        except Exception:  # never fail a handshake over a reload: serve what we have
            log.exception("reloading the certificate failed; still serving the previous one")
        if self._serving is not context:
            connection.context = self._serving

    def _identity(self) -> Identity:
        return _file_identity(self._files.cert), _file_identity(self._files.key)

    def _warn_once(self, problem: str) -> None:
        if problem != self._last_problem:
            log.warning("TLS: %s", problem)
            self._last_problem = problem


def _file_identity(path: Path) -> FileIdentity:
    stat = os.stat(path)  # follows symlinks: a swapped ..data directory is a new inode
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise TLSFilesError(f"{setting} {path}: no such file") from None
    except IsADirectoryError:
        raise TLSFilesError(f"{setting} {path}: a directory, not a PEM file") from None
    except PermissionError:
        raise TLSFilesError(
            f"{setting} {path}: not readable by the service's user (uid {os.getuid()}); "
            "mount it with a mode or fsGroup that lets the service read it"
        ) from None
    except OSError as error:
        raise TLSFilesError(f"{setting} {path}: {error.strerror}") from None


def _no_passphrase() -> NoReturn:
    raise TLSFilesError(f"{KEY_SETTING}: the private key needs a passphrase; give it unencrypted")
