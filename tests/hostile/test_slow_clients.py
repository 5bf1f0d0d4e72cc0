"""A real uvicorn on loopback with the service's limits (``server_options``): what only a
socket shows. A body over the limit is refused before it is sent at all; slow headers and
slow bodies are answered 408 and disconnected; a client that goes away leaves no traceback.

Waits are on the server's own actions (its answer, its close, its log line), never sleeps.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
from collections.abc import Iterator

import pytest
import uvicorn

from dispatch.api.limits import MAX_HEADER_BYTES, server_options
from dispatch.settings import DispatchSettings
from tests.conftest import API_KEY
from tests.hostile.test_api_limits import build_app

TIMEOUT = 0.5  # DISPATCH_CLIENT_TIMEOUT here: short, so the test waits little
MAX_BODY = 64 * 1024
CREATE = "/ERP/PurchaseOrder/Create"
GUARD = 20.0  # a socket operation taking longer than this is a failure, not a wait


class Server:
    def __init__(self, app: object, settings: DispatchSettings) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="info",
                                lifespan="off", **server_options(settings))
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:  # uvicorn's own flag; the thread sets it
            self.thread.join(0.01)
            assert self.thread.is_alive(), "uvicorn did not start"
        self.port = self.server.servers[0].sockets[0].getsockname()[1]

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=GUARD)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(GUARD)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    overrides = dict(client_timeout=TIMEOUT, max_body_bytes=MAX_BODY)
    app = build_app(tmp_path_factory.mktemp("slow") / "api.db", **overrides)
    running = Server(app, DispatchSettings(**overrides))  # type: ignore[arg-type]
    yield running
    running.stop()


def head(content_length: int | None = None, *, key: str = API_KEY, chunked: bool = False
         ) -> bytes:
    lines = [f"POST {CREATE} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {key}",
             "Content-Type: application/json"]
    if content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer[9:12])


class Recorder(logging.Handler):
    """Log records of the server thread, with an event per awaited message."""

    def __init__(self, wanted: str) -> None:
        super().__init__(logging.DEBUG)
        self.wanted, self.seen, self.records = wanted, threading.Event(), []  # type: ignore[var-annotated]

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if self.wanted in record.getMessage():
            self.seen.set()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    handler = Recorder("client went away")
    root = logging.getLogger()
    root.addHandler(handler)
    old = root.level
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old)
    for record in handler.records:
        assert record.exc_info is None and "Traceback" not in record.getMessage(), \
            record.getMessage()
        assert record.levelno < logging.ERROR, record.getMessage()


def test_a_content_length_over_the_limit_is_refused_before_the_body_is_sent(
        server: Server, recorder: Recorder) -> None:
    with server.connect() as sock:
        sock.sendall(head(300_000_000))  # and not one byte of the body
        answer = read_all(sock)
    assert status_of(answer) == 413
    assert b"DISPATCH_MAX_BODY_BYTES" in answer and b"connection: close" in answer.lower()


def test_a_wrong_key_is_401_first(server: Server, recorder: Recorder) -> None:
    with server.connect() as sock:
        sock.sendall(head(300_000_000, key="wrong"))
        assert status_of(read_all(sock)) == 401


def test_a_chunked_body_is_refused_once_past_the_limit(server: Server, recorder: Recorder
                                                       ) -> None:
    chunk = b"4000\r\n" + b"x" * 0x4000 + b"\r\n"
    sent = 0
    with server.connect() as sock:
        sock.sendall(head(chunked=True))
        while not select.select([sock], [], [], 0)[0]:
            assert sent < 100 * MAX_BODY, "no answer while the body went on"
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 0x4000
        answer = read_all(sock)
    assert status_of(answer) == 413 and b"at most 65536 bytes" in answer


def test_headers_that_never_complete_are_answered_408_and_closed(
        server: Server, recorder: Recorder) -> None:
    with server.connect() as sock:
        sock.sendall(b"POST " + CREATE.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        answer = read_all(sock)
    assert status_of(answer) == 408
    assert any("request headers not complete within 0.5 s" in r.getMessage()
               for r in recorder.records)


def test_a_connection_that_sends_nothing_is_closed(server: Server, recorder: Recorder
                                                   ) -> None:
    with server.connect() as sock:
        assert status_of(read_all(sock)) == 408


def test_endless_headers_are_refused(server: Server, recorder: Recorder) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        filler = b"X-Filler: " + b"y" * 1000 + b"\r\n"
        sent = 0
        while not select.select([sock], [], [], 0)[0] and sent < 4 * MAX_HEADER_BYTES:
            try:
                sock.sendall(filler)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(filler)
        answer = read_all(sock)
    assert status_of(answer) == 431


def test_a_body_that_does_not_arrive_in_time_is_answered_408_and_closed(
        server: Server, recorder: Recorder) -> None:
    with server.connect() as sock:
        sock.sendall(head(100) + b'{"VendorId": ')
        answer = read_all(sock)
    assert status_of(answer) == 408
    assert b"DISPATCH_CLIENT_TIMEOUT" in answer


def test_a_client_that_goes_away_mid_body_leaves_no_traceback(
        server: Server, recorder: Recorder) -> None:
    with server.connect() as sock:
        sock.sendall(head(1000) + b'{"VendorId": "AC')
    assert recorder.seen.wait(GUARD), "the server never noticed the client left"


def test_keep_alive_requests_still_work(server: Server, recorder: Recorder) -> None:
    body = b'{"VendorId": "ACME", "StockName": "Main"}'
    with server.connect() as sock:
        for _ in range(2):
            sock.sendall(head(len(body)) + body)
            answer = b""
            while b"RequestGuid" not in answer:
                chunk = sock.recv(65536)
                assert chunk, answer
                answer += chunk
            assert status_of(answer) == 200
