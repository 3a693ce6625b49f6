"""service.edge.tls: the files checked at start, and a certificate rotated under the context.

Handshakes run in memory (two ``ssl.SSLObject`` over ``MemoryBIO``s): the same OpenSSL code
paths as on a socket, the SNI callback included, without a server. The running service is
tested over loopback in tests/integration/test_edge_tls.py.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.config import Settings
from service.edge.tls import ReloadingCertificate, TLSFiles, TLSFilesError, load_context
from tests.support.tls import Issued, SecretVolume, TestCA, peer_serial, replace_file

TLS_1_1_DEPRECATED = "ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning"


def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> ssl.SSLObject:
    """Complete a handshake in memory; return the client's end (or raise either side's error)."""
    client_in, client_out, server_in, server_out = (ssl.MemoryBIO() for _ in range(4))
    client_end = client.wrap_bio(client_in, client_out, server_hostname="localhost")
    server_end = server.wrap_bio(server_in, server_out, server_side=True)
    pending = [client_end, server_end]
    for _ in range(10):
        for end in list(pending):
            try:
                end.do_handshake()
                pending.remove(end)
            except ssl.SSLWantReadError:
                pass
        server_in.write(client_out.read())
        client_in.write(server_out.read())
        if not pending:
            return client_end
    raise AssertionError("the handshake made no progress")


def trusting(ca: TestCA) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=ca.pem.decode())


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA()


@pytest.fixture
def files(tmp_path: Path, ca: TestCA) -> TLSFiles:
    issued = ca.issue("files")
    (tmp_path / "tls.crt").write_bytes(issued.cert_pem)
    (tmp_path / "tls.key").write_bytes(issued.key_pem)
    return TLSFiles(cert=tmp_path / "tls.crt", key=tmp_path / "tls.key")


# ------------------------------------------------------------------------- checked at start


def test_missing_files_are_named_with_their_setting(files: TLSFiles, tmp_path: Path) -> None:
    with pytest.raises(TLSFilesError, match=r"CRR_GATEWAY_TLS_CERT_FILE .*nope\.crt: no such"):
        load_context(TLSFiles(cert=tmp_path / "nope.crt", key=files.key))
    with pytest.raises(TLSFilesError, match=r"CRR_GATEWAY_TLS_KEY_FILE .*nope\.key: no such"):
        load_context(TLSFiles(cert=files.cert, key=tmp_path / "nope.key"))
    with pytest.raises(TLSFilesError, match="a directory, not a PEM file"):
        load_context(TLSFiles(cert=tmp_path, key=files.key))


def test_files_that_hold_no_pem_say_which(files: TLSFiles, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(TLSFilesError, match=r"CRR_GATEWAY_TLS_CERT_FILE .*no PEM certificate"):
        load_context(TLSFiles(cert=junk, key=files.key))
    with pytest.raises(TLSFilesError, match=r"CRR_GATEWAY_TLS_KEY_FILE .*no PEM private key"):
        load_context(TLSFiles(cert=files.cert, key=junk))
    # swapped: the key file holds the certificate and the other way round
    with pytest.raises(TLSFilesError, match=r"CRR_GATEWAY_TLS_CERT_FILE .*no PEM certificate"):
        load_context(TLSFiles(cert=files.key, key=files.cert))


def test_a_key_of_another_certificate_is_refused(files: TLSFiles, ca: TestCA) -> None:
    replace_file(files.key, ca.issue("other").key_pem)
    with pytest.raises(TLSFilesError, match=r"TLS_KEY_FILE .* is not the key of the certificate"):
        load_context(files)


def test_an_encrypted_key_is_refused_without_prompting(files: TLSFiles) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    replace_file(files.key, encrypted)
    with pytest.raises(TLSFilesError, match="encrypted"):
        load_context(files)


def test_the_settings_take_both_files_or_neither(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"TLS_CERT_FILE is set but .*TLS_KEY_FILE is not"):
        Settings(tls_cert_file=tmp_path / "tls.crt")
    with pytest.raises(ValidationError, match=r"TLS_KEY_FILE is set but .*TLS_CERT_FILE is not"):
        Settings(tls_key_file=tmp_path / "tls.key")
    with pytest.raises(ValidationError, match="tls_min_version"):
        Settings(tls_min_version="1.1")
    assert Settings().tls_cert_file is None  # plain HTTP unless told


# ------------------------------------------------------------------------- versions


@pytest.mark.filterwarnings(TLS_1_1_DEPRECATED)
def test_tls_1_1_is_refused_by_the_server(files: TLSFiles, ca: TestCA) -> None:
    old_client = trusting(ca)
    old_client.minimum_version = old_client.maximum_version = ssl.TLSVersion.TLSv1_1
    old_client.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer TLS 1.1 at all
    permissive = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    permissive.minimum_version = ssl.TLSVersion.TLSv1_1
    permissive.set_ciphers("DEFAULT:@SECLEVEL=0")
    permissive.load_cert_chain(files.cert, files.key)
    # the client does speak TLS 1.1: a server that allows it completes the handshake
    assert handshake(permissive, old_client).version() == "TLSv1.1"

    with pytest.raises(ssl.SSLError) as refused:
        handshake(load_context(files).context, old_client)
    assert refused.value.reason == "UNSUPPORTED_PROTOCOL"
    assert handshake(load_context(files).context, trusting(ca)).version() in ("TLSv1.2", "TLSv1.3")


def test_a_minimum_of_1_3_refuses_1_2(files: TLSFiles, ca: TestCA) -> None:
    client = trusting(ca)
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        handshake(load_context(files, "1.3").context, client)
    assert handshake(load_context(files, "1.3").context, trusting(ca)).version() == "TLSv1.3"


# ------------------------------------------------------------------------- rotation


@pytest.fixture
def volume(tmp_path: Path, first: Issued) -> SecretVolume:
    return SecretVolume(tmp_path / "secret", first)


@pytest.fixture
def first(ca: TestCA) -> Issued:
    return ca.issue("first")


def test_a_swapped_secret_volume_is_served_from_the_next_handshake(
    volume: SecretVolume, first: Issued, ca: TestCA
) -> None:
    reloading = ReloadingCertificate(TLSFiles(volume.cert, volume.key))
    before = handshake(reloading.context, trusting(ca))
    assert peer_serial(before) == first.serial

    second = ca.issue("second")
    volume.rotate(second)
    assert peer_serial(handshake(reloading.context, trusting(ca))) == second.serial
    assert peer_serial(handshake(reloading.context, trusting(ca))) == second.serial
    assert peer_serial(before) == first.serial  # an open connection keeps its certificate


def test_a_half_replaced_pair_keeps_the_last_good_one_until_the_key_follows(
    files: TLSFiles, ca: TestCA, caplog: pytest.LogCaptureFixture
) -> None:
    reloading = ReloadingCertificate(files)
    served = peer_serial(handshake(reloading.context, trusting(ca)))
    renewed = ca.issue("renewed")

    replace_file(files.cert, renewed.cert_pem)  # the key is not there yet
    with caplog.at_level(logging.WARNING, logger="service.edge.tls"):
        assert peer_serial(handshake(reloading.context, trusting(ca))) == served
        assert peer_serial(handshake(reloading.context, trusting(ca))) == served
    (warning,) = caplog.records  # once, not per handshake
    assert "is not the key of the certificate" in warning.getMessage()
    assert "still serving the previous certificate" in warning.getMessage()

    replace_file(files.key, renewed.key_pem)
    assert peer_serial(handshake(reloading.context, trusting(ca))) == renewed.serial


def test_files_gone_for_a_moment_keep_the_certificate(files: TLSFiles, ca: TestCA) -> None:
    reloading = ReloadingCertificate(files)
    served = peer_serial(handshake(reloading.context, trusting(ca)))
    kept = files.cert.read_bytes()
    files.cert.unlink()
    assert peer_serial(handshake(reloading.context, trusting(ca))) == served
    replace_file(files.cert, kept)
    assert peer_serial(handshake(reloading.context, trusting(ca))) == served


def test_the_fingerprint_names_the_served_certificate(volume: SecretVolume, ca: TestCA) -> None:
    import hashlib

    reloading = ReloadingCertificate(TLSFiles(volume.cert, volume.key))
    second = ca.issue("second")
    volume.rotate(second)
    der = handshake(reloading.context, trusting(ca)).getpeercert(binary_form=True)
    assert der is not None
    assert reloading.fingerprint == hashlib.sha256(der).hexdigest()
