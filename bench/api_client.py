"""A lean HTTP/1.1 keep-alive client for the API benchmark (asyncio streams, TCP_NODELAY).

httpx costs about a whole core at these rates on a 2-core machine, which would be taken
from the server under test; this client parses only what the benchmark needs (status,
Content-Length, body) and costs a few tens of microseconds per request.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any


class HttpError(Exception):
    """An answer the benchmark did not expect (status and body named)."""


class Connection:
    """One keep-alive connection; one request in flight at a time."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host = host
        self.port = port
        self._head = "".join(f"{k}: {v}\r\n" for k, v in
                             {"Host": f"{host}:{port}", **headers}.items()).encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> Connection:
        # Our own socket with TCP_NODELAY: small request/answer exchanges on loopback
        # otherwise stall ~40 ms on Nagle + delayed ACK (shared/TESTING.md).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (self.host, self.port))
        self._reader, self._writer = await asyncio.open_connection(sock=sock)
        return self

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def request_bytes(self, method: str, target: str, body: bytes | None = None) -> bytes:
        """The encoded request (build it before the clock runs, then ``send`` it)."""
        head = f"{method} {target} HTTP/1.1\r\n".encode() + self._head
        if body is None:
            return head + b"\r\n"
        return (head + b"Content-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode() + b"\r\n\r\n" + body)

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        """Send one encoded request and read its answer: (status, body)."""
        assert self._writer is not None and self._reader is not None, "open() first"
        self._writer.write(raw)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = None
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
                break
        if length is None:
            raise HttpError(f"answer without Content-Length: {head[:200]!r}")
        body = await self._reader.readexactly(length) if length else b""
        return status, body

    async def json(self, raw: bytes, expect: int = 200) -> Any:
        status, body = await self.send(raw)
        if status != expect:
            raise HttpError(f"HTTP {status} (expected {expect}): {body[:300]!r}")
        return json.loads(body)


class Pool:
    """Idle keep-alive connections, opened on demand (open-loop senders never wait)."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self._args = (host, port, headers)
        self._idle: list[Connection] = []
        self.opened = 0

    async def get(self) -> Connection:
        if self._idle:
            return self._idle.pop()
        self.opened += 1
        return await Connection(*self._args).open()

    def put(self, conn: Connection) -> None:
        self._idle.append(conn)

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()
