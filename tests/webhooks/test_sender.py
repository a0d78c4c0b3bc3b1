"""The POST itself over TLS: connected to the pinned address, while the certificate
is checked against the URL's name (and refused for any other)."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from stb_origin.webhooks import sender
from stb_origin.webhooks.targets import Target

NAME = "hooks.test"
LOCAL = ipaddress.ip_address("127.0.0.1")


def _certificate(subject: str, issuer_key: ec.EllipticCurvePrivateKey,
                 key_public: ec.EllipticCurvePublicKey,
                 issuer: str, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
               .public_key(key_public).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(hours=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]),
                                        critical=False)
    else:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture
def tls_receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, list]]:
    """A TLS server for hooks.test on 127.0.0.1, under a CA the process is told to trust."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("test CA", ca_key, ca_key.public_key(), "test CA", ca=True)
    leaf = _certificate(NAME, ca_key, key.public_key(), "test CA", ca=False)
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(pem))
    (tmp_path / "leaf.key").write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    sender._tls.cache_clear()
    hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            hosts.append(self.headers["Host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], hosts
    server.shutdown()
    server.server_close()
    sender._tls.cache_clear()


def test_tls_goes_to_the_pinned_address_and_checks_the_url_s_name(
        tls_receiver: tuple[int, list[str]]) -> None:
    port, hosts = tls_receiver
    outcome = sender.post(Target("https", NAME, port, "/in"), LOCAL, {}, b"{}", 5.0)
    assert outcome.delivered and outcome.status_code == 204, outcome
    assert hosts == [f"{NAME}:{port}"]


def test_a_certificate_for_another_name_is_refused(tls_receiver: tuple[int, list[str]]) -> None:
    port, hosts = tls_receiver
    outcome = sender.post(Target("https", "elsewhere.test", port, "/in"), LOCAL, {}, b"{}", 5.0)
    assert not outcome.delivered and outcome.status_code is None
    assert outcome.error is not None and outcome.error.startswith("TLS certificate refused")
    assert hosts == []
