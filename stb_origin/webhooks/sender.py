"""One HTTP POST to a webhook target, at an address already checked (``targets``).

The connection goes to that address, while the Host header and TLS (SNI and the
certificate check) use the URL's name: no second DNS lookup can swap the address
under us. Redirects are never followed (a 3xx is just not a 2xx), the response
body is not read, and every socket operation has a time-out; the whole call is
also bounded, so a target dribbling its headers byte by byte cannot hold a worker.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass

from stb_origin.webhooks.targets import IPAddress, Target

USER_AGENT = "stb-origin-webhooks/1"


@dataclass(frozen=True)
class Outcome:
    status_code: int | None  # None: no HTTP answer
    error: str | None  # in words, for the delivery log
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _Pinned(http.client.HTTPConnection):
    """Connects to ``address`` whatever the host name says."""

    def __init__(self, target: Target, address: IPAddress, timeout_s: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout_s)
        self._address = str(address)

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedTls(_Pinned):
    def connect(self) -> None:
        super().connect()
        self.sock = _tls().wrap_socket(self.sock, server_hostname=self.host)


@functools.cache
def _tls() -> ssl.SSLContext:
    """The system's CAs, loaded once a process and only where attempts are made."""
    return ssl.create_default_context()


def post(target: Target, address: IPAddress, headers: dict[str, str], body: bytes,
         timeout_s: float) -> Outcome:
    kind = _PinnedTls if target.scheme == "https" else _Pinned
    connection = kind(target, address, timeout_s)
    started = time.monotonic()
    # Socket time-outs bound each read; this bounds the whole exchange.
    deadline = threading.Timer(timeout_s, _abort, (connection,))
    deadline.start()
    try:
        connection.request("POST", target.path, body=body, headers={
            **headers, "Content-Type": "application/json", "User-Agent": USER_AGENT})
        response = connection.getresponse()
        return Outcome(response.status, None, _ms(started))
    except (OSError, http.client.HTTPException) as exc:
        if not deadline.is_alive() or isinstance(exc, TimeoutError):
            return Outcome(None, f"no answer within {timeout_s:g} s", _ms(started))
        return Outcome(None, _words(exc), _ms(started))
    finally:
        deadline.cancel()
        connection.close()


def _abort(connection: http.client.HTTPConnection) -> None:
    if connection.sock is not None:
        with contextlib.suppress(OSError):
            connection.sock.shutdown(socket.SHUT_RDWR)


def _words(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate refused: {exc.verify_message}"[:200]
    if isinstance(exc, ssl.SSLError):
        return "TLS handshake failed"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, http.client.RemoteDisconnected):  # a ConnectionResetError too
        return "closed without answering"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, http.client.HTTPException):
        return "not an HTTP answer"
    return f"network error: {getattr(exc, 'strerror', None) or type(exc).__name__}"[:200]


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
