"""One POST to one checked address, within a deadline: no redirects followed, at most
MAX_READ bytes of the answer read. Standard library only, so that the connection goes to the
address exports/webhooks/addresses.py checked while the Host header, TLS SNI and the
certificate check name the URL's host."""
import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass

from exports.webhooks.addresses import Target

TIMEOUT_SECONDS = 5.0  # connecting, sending and reading the answer, all together
MAX_READ = 64 * 1024


@dataclass(frozen=True)
class Answer:
    status_code: int | None
    body: bytes
    latency_ms: int
    error: str = ""
    timed_out: bool = False


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self.address = target.address

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self.address = target.address

    def connect(self):
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _cut_off(connection) -> None:
    """At the deadline: end the exchange, however slowly the receiver drips its answer. The
    flag first: the shutdown wakes the sender, which reads it to tell a timeout from a drop."""
    connection.deadline_passed = True
    sock = connection.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def post(target: Target, headers: dict, body: bytes, timeout: float = TIMEOUT_SECONDS) -> Answer:
    """POST `body` to `target`; an Answer whatever happens (a status, or an error)."""
    started = time.monotonic()
    kind = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = kind(target, timeout)
    connection.deadline_passed = False
    watchdog = threading.Timer(timeout, _cut_off, args=(connection,))
    watchdog.start()
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        content = response.read(MAX_READ)
        return Answer(response.status, content, _ms_since(started))
    except (OSError, http.client.HTTPException) as exc:
        timed_out = connection.deadline_passed or isinstance(exc, TimeoutError)
        error = f"no answer within {timeout:g} s" if timed_out else f"{type(exc).__name__}: {exc}"
        return Answer(None, b"", _ms_since(started), error=error, timed_out=timed_out)
    finally:
        watchdog.cancel()
        connection.close()


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
