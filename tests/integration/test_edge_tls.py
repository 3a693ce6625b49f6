"""HTTPS served by ``python -m service`` itself, and a certificate rotated while it runs.

The service runs as a process on the real control plane, given a certificate and key laid out
as a Secret volume is (``tls.crt`` -> ``..data/tls.crt``); clients are httpx with the test CA
as their bundle, and the standard library for what httpx cannot do (offer TLS 1.1). Rotations
happen as the kubelet does them (a new directory, ``..data`` renamed over atomically) and as
other tools do (one file replaced, then the other), and the process is never restarted.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kubernetes import client as k8s

from harness.controlplane import ControlPlane
from tests.support.api import restarts_url
from tests.support.service_process import ServiceProcess
from tests.support.tls import Issued, SecretVolume, TestCA, peer_serial, replace_file
from tests.support.waiting import wait_until

HEADER_TIMEOUT_SECONDS = 2  # also bounds the TLS handshake


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA()


@pytest.fixture
def first(ca: TestCA) -> Issued:
    return ca.issue("crr-gateway-first")


@pytest.fixture
def volume(tmp_path: Path, first: Issued) -> SecretVolume:
    return SecretVolume(tmp_path / "secret", first)


def trusting(ca: TestCA) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=ca.pem.decode())


@contextlib.contextmanager
def https_service(
    control_plane: ControlPlane, namespace: str, volume: SecretVolume, ca: TestCA, log: Path
) -> Iterator[ServiceProcess]:
    process = ServiceProcess(
        control_plane.kubeconfig,
        namespace,
        log,
        {
            "CRR_GATEWAY_TLS_CERT_FILE": str(volume.cert),
            "CRR_GATEWAY_TLS_KEY_FILE": str(volume.key),
            "CRR_GATEWAY_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT_SECONDS),
        },
        verify=trusting(ca),
    )
    try:
        wait_until("the service to be ready over HTTPS", process.ready, timeout=60)
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def shared_namespace(kube: k8s.ApiClient) -> str:
    name = f"edge-tls-{secrets.token_hex(3)}"
    k8s.CoreV1Api(kube).create_namespace({"metadata": {"name": name}})
    return name


@pytest.fixture(scope="module")
def service(
    control_plane: ControlPlane,
    shared_namespace: str,
    tmp_path_factory: pytest.TempPathFactory,
    ca: TestCA,
) -> Iterator[ServiceProcess]:
    """One service for the tests that change nothing (the rotation test has its own)."""
    root = tmp_path_factory.mktemp("tls")
    volume = SecretVolume(root / "secret", ca.issue("crr-gateway"))
    with https_service(control_plane, shared_namespace, volume, ca, root / "log") as process:
        yield process


def served_serial(response: httpx.Response) -> int:
    """The serial of the certificate the connection that carried ``response`` was given."""
    return peer_serial(response.extensions["network_stream"].get_extra_info("ssl_object"))


def new_connection_serial(service: ServiceProcess, ca: TestCA) -> int:
    with httpx.Client(verify=trusting(ca), timeout=30) as client:
        response = client.get(service.url + "/healthz")
        assert response.status_code == 200
        return served_serial(response)


def test_a_client_with_the_ca_bundle_is_served_over_tls_1_2_or_newer(
    service: ServiceProcess, ca: TestCA, shared_namespace: str
) -> None:
    with httpx.Client(base_url=service.url, verify=trusting(ca), timeout=30) as client:
        listed = client.get(restarts_url(shared_namespace))
        assert listed.status_code == 200, listed.text
        assert listed.url.scheme == "https"
        tls = listed.extensions["network_stream"].get_extra_info("ssl_object")
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        assert tls.selected_alpn_protocol() in (None, "http/1.1")
    assert service.url.startswith("https://")


def test_a_client_that_does_not_know_the_ca_refuses_the_server(
    service: ServiceProcess, shared_namespace: str
) -> None:
    stranger = TestCA("someone-else")
    for verify in (True, trusting(stranger)):  # the system's CAs; another private CA
        with (
            httpx.Client(verify=verify, timeout=30) as client,
            pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            client.get(service.url + restarts_url(shared_namespace))


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_1_1_is_refused_by_the_service(service: ServiceProcess, ca: TestCA) -> None:
    def handshake(client: ssl.SSLContext) -> str | None:
        with (
            socket.create_connection(("127.0.0.1", service.port), timeout=30) as raw,
            client.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            return tls.version()

    old = trusting(ca)
    old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("DEFAULT:@SECLEVEL=0")  # so that this client does offer TLS 1.1
    with pytest.raises(ssl.SSLError) as refused:
        handshake(old)
    # The server ends the handshake: asyncio closes without flushing OpenSSL's alert, so the
    # client sees the end of the stream (or the alert); a client unable to offer TLS 1.1 would
    # fail with NO_PROTOCOLS_AVAILABLE before sending anything (tests/unit/edge/test_tls.py
    # shows this client completing a TLS 1.1 handshake with a server that allows it).
    assert refused.value.reason in ("UNEXPECTED_EOF_WHILE_READING", "TLSV1_ALERT_PROTOCOL_VERSION")

    current = trusting(ca)
    current.maximum_version = ssl.TLSVersion.TLSv1_2
    assert handshake(current) == "TLSv1.2"  # the same client, one version up, is served


def test_plain_http_on_the_https_port_is_never_answered(
    service: ServiceProcess, shared_namespace: str
) -> None:
    plain = service.url.replace("https://", "http://")
    with pytest.raises(httpx.TransportError):
        httpx.get(plain + restarts_url(shared_namespace), headers={"Authorization": "Bearer x"})


def test_a_connection_that_never_completes_its_handshake_is_closed(
    service: ServiceProcess,
) -> None:
    # asyncio alone would wait 60 s; a generous bound above the 2 s deadline
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as raw:
        raw.sendall(b"\x16\x03\x01")  # the first bytes of a ClientHello, and no more
        assert raw.recv(1024) == b""  # closed by the server (bounded by the header deadline)


def test_a_rotated_certificate_is_served_to_new_connections_without_a_restart(
    control_plane: ControlPlane,
    namespace: str,
    tmp_path: Path,
    volume: SecretVolume,
    ca: TestCA,
    first: Issued,
) -> None:
    log = tmp_path / "service.log"
    with (
        https_service(control_plane, namespace, volume, ca, log) as service,
        httpx.Client(base_url=service.url, verify=trusting(ca), timeout=30) as before,
    ):
        assert served_serial(before.get("/healthz")) == first.serial
        pid = service.process.pid

        # as the kubelet updates a Secret volume: both files at once
        second = ca.issue("crr-gateway-second")
        volume.rotate(second)
        assert new_connection_serial(service, ca) == second.serial
        # the connection opened before keeps working, on the certificate it was opened with
        response = before.get("/healthz")
        assert response.status_code == 200
        assert served_serial(response) == first.serial

        # as most other tools do: one file replaced, then the other. In between the pair does
        # not match: handshakes keep getting the last good certificate instead of failing
        third = ca.issue("crr-gateway-third")
        replace_file(volume.cert, third.cert_pem)
        assert new_connection_serial(service, ca) == second.serial
        replace_file(volume.key, third.key_pem)
        assert new_connection_serial(service, ca) == third.serial

        assert service.process.pid == pid and service.process.poll() is None  # no restart
    assert "is not the key of the certificate" in log.read_text()  # the half pair, named


def test_a_bad_certificate_file_stops_the_start_with_a_precise_message(
    control_plane: ControlPlane, namespace: str, tmp_path: Path, ca: TestCA
) -> None:
    issued = ca.issue("mismatched")
    (tmp_path / "tls.crt").write_bytes(issued.cert_pem)
    (tmp_path / "tls.key").write_bytes(ca.issue("other").key_pem)
    process = ServiceProcess(
        control_plane.kubeconfig,
        namespace,
        tmp_path / "service.log",
        {
            "CRR_GATEWAY_TLS_CERT_FILE": str(tmp_path / "tls.crt"),
            "CRR_GATEWAY_TLS_KEY_FILE": str(tmp_path / "tls.key"),
        },
    )
    try:
        assert process.process.wait(60) != 0
    finally:
        process.stop()
    log = process.log.read_text()
    assert "crr-gateway: cannot serve HTTPS: CRR_GATEWAY_TLS_KEY_FILE" in log
    assert "is not the key of the certificate in CRR_GATEWAY_TLS_CERT_FILE" in log
