"""Vendor channel targets of the reference-data file (``email``, ``ftp``, ``b2b``,
``responses``) and the field checks every entry shares (ids, URLs)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
)


def _control(text: str) -> str | None:
    for char in text:
        if ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0:
            return f"U+{ord(char):04X}"
    return None


def _check_id(value: Any) -> Any:
    """An id is one printable token of text: no control characters, no '/', no padding."""
    if not isinstance(value, str):
        return value
    bad = _control(value)
    if bad is not None:
        raise ValueError(f"contains the control character {bad}; an id is one line of "
                         "printable text")
    if "/" in value:
        raise ValueError(f"{value!r} contains '/' (it separates order and line in B2B "
                         "references and would split file names); use e.g. '-' instead")
    if value != value.strip():
        raise ValueError(f"{value!r} starts or ends with white space; remove it")
    return value


Id50 = Annotated[str, BeforeValidator(_check_id), Field(min_length=1, max_length=50)]
Id60 = Annotated[str, BeforeValidator(_check_id), Field(min_length=1, max_length=60)]


def _check_url_text(value: str) -> None:
    bad = _control(value)
    if bad is not None:
        raise ValueError(f"contains the control character {bad}; a URL is one line of text")


class _Entry(BaseModel):
    # Extra keys are allowed by the spec ("more optional keys are allowed") and kept.
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True,
                              hide_input_in_errors=True)  # a refused value may be a secret


class VendorEmail(_Entry):
    to: list[str] = Field(min_length=1)
    cc: list[str] = Field(default_factory=list)

    @field_validator("to", "cc")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address or any(c.isspace() for c in address):
                raise ValueError(f"{address!r} is not an email address like orders@vendor.test")
        return value


class VendorFtp(_Entry):
    url: str
    password_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    key_file: str | None = None
    host_key: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        _check_url_text(value)
        parts = urlsplit(value)
        if parts.scheme not in ("sftp", "ftp", "ftps"):
            raise ValueError("scheme must be sftp://, ftp:// or ftps://")
        if not parts.hostname:
            raise ValueError("needs a host, e.g. sftp://user@127.0.0.1:2222/inbox")
        if parts.password:
            raise ValueError("must not contain a password; name an env var in password_env")
        path = unquote(parts.path)
        if ".." in path.replace("\\", "/").split("/"):
            raise ValueError(f"path {parts.path!r} has a '..' segment; give the vendor's "
                             "directory itself, e.g. sftp://acme@127.0.0.1:2222/inbox")
        bad = _control(path)
        if bad is not None:
            raise ValueError(f"path contains the control character {bad} (percent-encoded)")
        return value

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme


class VendorB2B(_Entry):
    url: str
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        _check_url_text(value)
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// base URL, e.g. http://127.0.0.1:8081")
        return value.rstrip("/")


class VendorResponses(_Entry):
    """SPEC 8: how the vendor answers (kept as the vendor's extra ``responses`` key)."""

    key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    inbox: str | None = None
    within: str | None = None
    reminder_template: Id50 | None = None

    @field_validator("inbox")
    @classmethod
    def _inbox(cls, value: str | None) -> str | None:
        return None if value is None else VendorFtp._url(value)

    @field_validator("within")
    @classmethod
    def _within(cls, value: str | None) -> str | None:
        from dispatch.rules.responses import parse_within

        if value is not None:
            parse_within(value)
        return value
