"""A stand-in vendor B2B receiver implementing seed 000's submit endpoint, with its checks.

``POST /api/external/purchaseorders/submit``: JSON body with ``customerReference`` (string),
``quantity`` and ``atelierCode`` (integers), ``deliveryDates {fromDate, toDate}`` (ISO
date-times), optional ``deliveryLocation`` / ``invoiceAddress`` (if sent and not empty,
every field but ``addressLine2`` is required). 200 with an order id; 400 listing problems.
An ``Idempotency-Key`` seen before replays the first answer without a second submission
(409 if the body differs). With ``api_key`` set, ``Authorization: Bearer <key>`` is
required (401). Faults: :meth:`B2BStandin.fail_next` answers the next requests with a status;
:meth:`B2BStandin.drop_next` closes the connection after reading a request;
:meth:`B2BStandin.echo_next` answers with a status and the request's ``Authorization`` in the
body (as careless error pages do: the client must not leak a key the server echoes).
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from dispatch.reference_data import VendorB2B

SUBMIT_PATH = "/api/external/purchaseorders/submit"
_ADDRESS = {
    "deliveryLocation": ("locationName", "addressLine1", "countryTitle", "city", "province",
                         "zipCode"),
    "invoiceAddress": ("addressName", "addressLine1", "countryTitle", "city", "province",
                       "zipCode"),
}


@dataclass(frozen=True)
class Submission:
    """One order line the vendor accepted."""

    order_id: str
    idempotency_key: str | None
    body: dict[str, Any]
    authorization: str | None


def check_submission(body: Any) -> list[str]:
    """Seed 000's validation; returns the problems (empty when valid)."""
    if not isinstance(body, dict):
        return ["body: must be a JSON object"]
    problems = []
    if not isinstance(body.get("customerReference"), str) or not body["customerReference"]:
        problems.append("customerReference: required string")
    for key in ("quantity", "atelierCode"):
        value = body.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{key}: required integer")
    for key, required in _ADDRESS.items():
        address = body.get(key)
        if address in (None, {}):
            continue
        if not isinstance(address, dict):
            problems.append(f"{key}: must be an object")
            continue
        problems += [f"{key}.{name}: required" for name in required
                     if not isinstance(address.get(name), str) or not address[name]]
    dates = body.get("deliveryDates")
    if not isinstance(dates, dict):
        problems.append("deliveryDates: required object")
    else:
        for name in ("fromDate", "toDate"):
            try:
                datetime.fromisoformat(str(dates.get(name)).replace("Z", "+00:00"))
            except ValueError:
                problems.append(f"deliveryDates.{name}: required date-time")
    return problems


class _Server(ThreadingHTTPServer):
    # The standard library's backlog is 5: a dispatcher opening 32 connections at once
    # had some of them reset (ReadError, then a retry) by this stand-in, not by its own fault.
    request_queue_size = 128
    daemon_threads = True


class B2BStandin:
    """A ThreadingHTTPServer on 127.0.0.1:0; use as a context manager or call :meth:`stop`."""

    def __init__(self, *, api_key: str | None = None, host: str = "127.0.0.1") -> None:
        self.api_key = api_key
        self.submissions: list[Submission] = []
        self.requests = 0
        self._answers: dict[str, tuple[bytes, int, bytes]] = {}
        self._faults: deque[int | str] = deque()
        self._lock = threading.Lock()
        self._server = _Server((host, 0), self._handler_class())
        self.host = host
        self.port: int = self._server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        kwargs={"poll_interval": 0.05}, name="b2b-standin")
        self._thread.start()

    def vendor_b2b(self, api_key_env: str | None = None) -> VendorB2B:
        return VendorB2B(url=self.url, api_key_env=api_key_env)

    def fail_next(self, status: int, times: int = 1) -> None:
        with self._lock:
            self._faults.extend([status] * times)

    def drop_next(self) -> None:
        with self._lock:
            self._faults.append("drop")

    def echo_next(self, status: int) -> None:
        with self._lock:
            self._faults.append(f"echo {status}")

    def _answer(self, headers: Any, raw: bytes) -> tuple[int, dict[str, Any]] | None:
        with self._lock:
            self.requests += 1
            fault = self._faults.popleft() if self._faults else None
        if fault == "drop":
            return None
        if isinstance(fault, str) and fault.startswith("echo "):
            return int(fault[5:]), {"authorization": headers.get("Authorization")}
        if isinstance(fault, int):
            return fault, {"error": f"stand-in fault {fault}"}
        if self.api_key is not None and headers.get("Authorization") != f"Bearer {self.api_key}":
            return 401, {"error": "missing or wrong API key"}
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, {"errors": ["body: not JSON"]}
        problems = check_submission(body)
        if problems:
            return 400, {"errors": problems}
        key = headers.get("Idempotency-Key")
        with self._lock:
            if key is not None and key in self._answers:
                first_raw, status, first_answer = self._answers[key]
                if first_raw != raw:
                    return 409, {"error": "Idempotency-Key reused with a different body"}
                return status, {**json.loads(first_answer), "replayed": True}
            order_id = f"LP-{len(self.submissions) + 1}"
            self.submissions.append(Submission(order_id, key, body,
                                               headers.get("Authorization")))
            answer = {"orderId": order_id, "customerReference": body["customerReference"],
                      "status": "Submitted"}
            if key is not None:
                self._answers[key] = (raw, 200, json.dumps(answer).encode())
        return 200, answer

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != SUBMIT_PATH:
                    self._reply(404, {"error": f"no route {self.path}"})
                    return
                result = standin._answer(self.headers, raw)
                if result is None:
                    self.close_connection = True
                    self.connection.close()
                    return
                self._reply(*result)

            def _reply(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: tests and the demo read the recorded submissions

        return Handler

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> B2BStandin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_b2b_standin(**kwargs: Any) -> B2BStandin:
    """Start a receiver; see :class:`B2BStandin` for the keyword arguments."""
    return B2BStandin(**kwargs)
