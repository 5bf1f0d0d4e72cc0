"""A stand-in SMTP relay (aiosmtpd) that records every message; plain, STARTTLS or TLS.

Faults for tests: :meth:`SmtpStandin.fail_next` answers the next DATA with a reply such as
``"451 4.3.0 try later"``; :meth:`SmtpStandin.drop_next` closes the connection at DATA.
"""

from __future__ import annotations

import threading
import warnings
from collections import deque
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from email.policy import default as default_policy
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from dispatch.demo.vendors.tls import TestCertificates

Security = Literal["none", "starttls", "tls"]


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the relay accepted it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes

    @property
    def message(self) -> Message:
        return message_from_bytes(self.content, policy=default_policy)

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


@dataclass
class _Handler:
    messages: list[ReceivedMail] = field(default_factory=list)
    faults: deque[str] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.lock:
            fault = self.faults.popleft() if self.faults else None
        if fault == "drop":
            if server.transport is not None:
                server.transport.close()
            return "421 closing"
        if fault:
            return fault
        mail = ReceivedMail(envelope.mail_from, tuple(envelope.rcpt_tos),
                            bytes(envelope.original_content or envelope.content))
        with self.lock:
            self.messages.append(mail)
        return "250 2.0.0 OK queued as " + str(len(self.messages))


class _Controller(Controller):
    """Binds port 0 and reads the real port back (the stock self-check needs a fixed one)."""

    connections = 0

    def _trigger_server(self) -> None:
        server: Any = self.server  # an asyncio.Server: it has .sockets
        self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()

    def factory(self) -> SMTP:
        self.connections += 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # AUTH without TLS is deliberate in "none" mode
            return super().factory()


class SmtpStandin:
    """A running relay on 127.0.0.1; use as a context manager or call :meth:`stop`."""

    def __init__(self, *, security: Security = "none", certificates: TestCertificates | None
                 = None, username: str | None = None, password: str | None = None,
                 host: str = "127.0.0.1") -> None:
        if security != "none" and certificates is None:
            raise ValueError(f"security={security} needs certificates")
        self.host = host
        self.security = security
        self.certificates = certificates
        self.username = username
        self._handler = _Handler()
        kwargs: dict[str, Any] = {}
        if security == "starttls":
            assert certificates is not None
            kwargs.update(tls_context=certificates.server_context(), require_starttls=True)
        if username is not None:
            kwargs.update(auth_required=True, auth_require_tls=security == "starttls",
                          authenticator=self._authenticate)
        ssl_context = certificates.server_context() if security == "tls" and certificates \
            else None
        self._controller = _Controller(self._handler, hostname=host, port=0,
                                       ssl_context=ssl_context, **kwargs)
        self._password = password
        self._controller.start()
        self._baseline = self._controller.connections  # the start-up self-check connection
        self.port: int = self._controller.port

    def _authenticate(self, server: SMTP, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login.decode() == self.username
              and auth_data.password.decode() == self._password)
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    @property
    def messages(self) -> list[ReceivedMail]:
        with self._handler.lock:
            return list(self._handler.messages)

    @property
    def connections(self) -> int:
        """Client connections accepted since start."""
        return self._controller.connections - self._baseline

    def fail_next(self, reply: str, times: int = 1) -> None:
        """Answer the next ``times`` DATA commands with ``reply`` (e.g. "451 4.3.0 later")."""
        with self._handler.lock:
            self._handler.faults.extend([reply] * times)

    def drop_next(self) -> None:
        """Close the connection at the next DATA, without an answer."""
        with self._handler.lock:
            self._handler.faults.append("drop")

    def settings_overrides(self) -> dict[str, Any]:
        """``DispatchSettings(**overrides)`` keys pointing the email channel here."""
        overrides: dict[str, Any] = {"smtp_host": self.host, "smtp_port": self.port,
                                     "smtp_security": self.security}
        if self.certificates is not None:
            overrides["smtp_ca_file"] = self.certificates.ca_file
        if self.username is not None:
            overrides.update(smtp_username=self.username, smtp_password=self._password)
        return overrides

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpStandin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_smtp_standin(**kwargs: Any) -> SmtpStandin:
    """Start a relay; see :class:`SmtpStandin` for the keyword arguments."""
    return SmtpStandin(**kwargs)
