"""Runtime settings: the ``DISPATCH_*`` environment variables, read once and passed in.

Nothing reads the environment anywhere else; build a :class:`DispatchSettings` (or call
:func:`load_settings`, which turns a validation error into a :class:`SettingsError` that
names the variable) and hand it to whatever needs it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from dispatch.channels.base import secret_problem
from dispatch.errors import SettingsError


def machine_cores() -> int:
    """The cores this process may run on (its CPU affinity: taskset and cgroups count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATES_DIR = PROJECT_ROOT / "templates"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class DispatchSettings(BaseSettings):
    """Every knob of the service; see SPEC section 2."""

    model_config = SettingsConfigDict(
        env_prefix="DISPATCH_", extra="ignore", frozen=True, validate_default=True,
        hide_input_in_errors=True,  # a refused value may be a secret
    )

    database_url: str = Field(
        default="sqlite:///dispatch.db",
        description="SQLAlchemy URL: sqlite:///FILE (relative to the working directory) "
        "or postgresql://user@host:port/db",
        min_length=1,
    )
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated API keys accepted by the ERP API (Bearer or X-Api-Key)",
    )
    templates_dir: Path = Field(
        default=DEFAULT_TEMPLATES_DIR, description="Directory holding the named templates"
    )
    smtp_host: str = Field(default="127.0.0.1", description="SMTP relay host", min_length=1)
    smtp_port: int = Field(default=25, ge=1, le=65535, description="SMTP relay port")
    smtp_security: Literal["none", "starttls", "tls"] = Field(
        default="none", description="none, starttls or tls"
    )
    smtp_username: str | None = Field(default=None, description="SMTP AUTH user, optional")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP AUTH password")
    smtp_sender: str = Field(
        default="purchasing@dispatch.localhost",
        description="From address of dispatch emails",
        min_length=3,
    )
    smtp_ca_file: Path | None = Field(
        default=None, description="CA bundle to verify the SMTP relay's certificate (TLS)"
    )
    retry_delays: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [5.0, 30.0, 120.0, 600.0],
        description="Seconds between delivery attempts; len + 1 attempts in all",
    )
    b2b_delivery_window_days: int = Field(
        default=14, ge=1, le=3650, description="deliveryDates window when a line has no date"
    )
    render_processes: int = Field(
        default=0, ge=0, le=64,
        description="processes that render documents for a dispatch run (0: a thread of "
        "the run's own process; auto: one per core this process may run on, up to 64)",
    )
    buyer_name: str = Field(
        default="Dispatch Buyer", description="Buyer name printed on documents", max_length=200
    )
    request_batch_size: int = Field(
        default=64, ge=1, le=10_000, description="ERP requests executed per database transaction"
    )
    request_poll_seconds: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="How often the request executor looks for work written by other processes",
    )

    max_lines: int = Field(
        default=2000,
        ge=1,
        le=1_000_000,
        description="Most PurchaseOrderItems a Create (order lines) or an UpdateQuantity "
        "(entries) may carry; beyond it the API answers 422",
    )
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        le=1024 * 1024 * 1024,
        description="Largest request body the API reads; a larger one is refused with 413 "
        "before it is read (Content-Length, or while a chunked body arrives)",
    )
    responses_sweep_seconds: float = Field(
        default=30.0,
        ge=0.5,
        le=3600,
        description="Embedded mode: seconds between collect-responses runs (response "
        "inboxes, deadlines, reminders; SPEC 8 asks for at least every minute)",
    )
    client_timeout: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Seconds a client has to send a request's headers, and then its body; "
        "a slower one is disconnected",
    )
    max_document_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=1024,
        le=2 * 1024 * 1024 * 1024,
        description="Largest document (XML, PDF, Excel) a template may produce; a larger "
        "one fails to render, naming the template",
    )

    @field_validator("smtp_password")
    @classmethod
    def _carriable_password(cls, value: SecretStr | None) -> SecretStr | None:
        problem = secret_problem(value.get_secret_value()) if value is not None else None
        if problem is not None:
            raise ValueError(f"the value {problem}")
        return value

    @field_validator("render_processes", mode="before")
    @classmethod
    def _auto_processes(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip().lower()
            if text == "auto":
                return min(machine_cores(), 64)
            if not text.isdigit():
                raise ValueError(f"{value!r} is not a number of processes: use 0 (render "
                                 "in a thread), a number up to 64, or auto")
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _keys(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("retry_delays", mode="before")
    @classmethod
    def _delays(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("retry_delays")
    @classmethod
    def _delays_non_negative(cls, value: list[float]) -> list[float]:
        if any(delay < 0 for delay in value):
            raise ValueError("every delay must be >= 0 seconds, e.g. 5,30,120,600")
        return value

    @field_validator("database_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError("must start with sqlite:// or postgresql://")
        if value.startswith("postgres://"):
            value = "postgresql://" + value[len("postgres://") :]
        if value.startswith("postgresql://"):
            # psycopg 3 is the driver we ship; plain postgresql:// would ask for psycopg2.
            value = "postgresql+psycopg://" + value[len("postgresql://") :]
        return value

    def api_key_values(self) -> frozenset[str]:
        return frozenset(key.get_secret_value() for key in self.api_keys)


def load_settings(**overrides: object) -> DispatchSettings:
    """Read the environment; a bad value raises SettingsError naming the variable."""
    try:
        return DispatchSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_input=False):
            field = str(err["loc"][0]) if err["loc"] else "?"
            problems.append(f"DISPATCH_{field.upper()}: {err['msg']}")
    # Raised outside the except: the validation error (it may hold a secret) is not chained.
    raise SettingsError("invalid settings: " + "; ".join(problems))
