"""The reference-data file (SPEC 2): its shape, and validation that names entry and field.

Pure: parsing and checking only. Writing is ``dispatch.store.reference.upsert_reference_data``.
Channels take the vendor target models defined here (``VendorEmail``, ``VendorFtp``,
``VendorB2B``), never the raw JSON.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dispatch.errors import ReferenceDataError

Id50 = Field(min_length=1, max_length=50)


class _Entry(BaseModel):
    # Extra keys are allowed by the spec ("more optional keys are allowed") and kept.
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)


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
        parts = urlsplit(value)
        if parts.scheme not in ("sftp", "ftp", "ftps"):
            raise ValueError("scheme must be sftp://, ftp:// or ftps://")
        if not parts.hostname:
            raise ValueError("needs a host, e.g. sftp://user@127.0.0.1:2222/inbox")
        if parts.password:
            raise ValueError("must not contain a password; name an env var in password_env")
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
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// base URL, e.g. http://127.0.0.1:8081")
        return value.rstrip("/")


class VendorEntry(_Entry):
    id: str = Id50
    name: str = Field(min_length=1, max_length=200)
    allow_overstock: bool = False
    send_changes: bool = False
    email: VendorEmail | None = None
    ftp: VendorFtp | None = None
    b2b: VendorB2B | None = None


class StockEntry(_Entry):
    name: str = Id50


class DeviceEntry(_Entry):
    id: str = Id50
    stock: str = Id50


class ItemVendorEntry(_Entry):
    quoted: bool = False
    atelier_code: int | None = None
    price: Decimal | None = Field(default=None, ge=0)


class ItemEntry(_Entry):
    id: str = Id50
    name: str = Field(min_length=1, max_length=400)
    unit: str = Field(min_length=1, max_length=50)
    vendors: dict[str, ItemVendorEntry] = Field(default_factory=dict)


class TemplateEntry(_Entry):
    name: str = Id50
    format: Literal["PDF", "Excel"]
    file: str = Field(min_length=1, max_length=400)

    @field_validator("file")
    @classmethod
    def _relative(cls, value: str) -> str:
        path = PurePosixPath(value.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts:
            raise ValueError("must be a path under the templates directory (no '..', not absolute)")
        return str(path)


class LocationEntry(_Entry):
    id: str = Field(min_length=1, max_length=60)
    locationName: str = Field(min_length=1, max_length=200)
    addressLine1: str = Field(min_length=1, max_length=200)
    addressLine2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    province: str = Field(min_length=1, max_length=100)
    countryTitle: str = Field(min_length=1, max_length=100)
    zipCode: str = Field(min_length=1, max_length=20)

    @field_validator("zipCode", mode="before")
    @classmethod
    def _zip_text(cls, value: Any) -> Any:
        # YAML reads 62701 as an int; a zip code is text.
        return str(value) if isinstance(value, int) else value


class ReferenceData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vendors: list[VendorEntry] = Field(default_factory=list)
    stocks: list[StockEntry] = Field(default_factory=list)
    devices: list[DeviceEntry] = Field(default_factory=list)
    items: list[ItemEntry] = Field(default_factory=list)
    templates: list[TemplateEntry] = Field(default_factory=list)
    locations: list[LocationEntry] = Field(default_factory=list)


_SECTIONS = ("vendors", "stocks", "devices", "items", "templates", "locations")


def _entry_label(raw: Any, section: str, index: int) -> str:
    label = f"{section}[{index}]"
    if isinstance(raw, dict):
        key = raw.get("name") if section in ("stocks", "templates") else raw.get("id")
        if isinstance(key, str | int):
            label += f" ({key})"
    return label


def parse_reference_text(text: str, source: str) -> ReferenceData:
    """Parse YAML or JSON text into ReferenceData; every problem names entry and field."""
    try:
        raw = json.loads(text) if source.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ReferenceDataError(source, [f"not valid YAML/JSON: {exc}"]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ReferenceDataError(
            source, [f"top level must be a mapping with keys {', '.join(_SECTIONS)}"]
        )
    try:
        return ReferenceData.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = list(err["loc"])
            if not loc:
                problems.append(err["msg"])
                continue
            section = str(loc[0])
            if section not in _SECTIONS:
                problems.append(f"{section}: unknown section; allowed: {', '.join(_SECTIONS)}")
                continue
            if len(loc) >= 2 and isinstance(loc[1], int):
                entries = raw.get(section) or []
                label = _entry_label(entries[loc[1]], section, loc[1])
                field = ".".join(str(part) for part in loc[2:]) or "(entry)"
                problems.append(f"{label}.{field}: {err['msg']}")
            else:
                problems.append(f"{section}: {err['msg']}")
        raise ReferenceDataError(source, problems) from None


def read_reference_file(path: Path) -> ReferenceData:
    """Read and parse a reference-data file (YAML, or JSON by extension)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReferenceDataError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    return parse_reference_text(text, str(path))


def check_duplicates(data: ReferenceData) -> list[str]:
    """Ids appearing twice in one section of the same file."""
    problems = []
    for section in _SECTIONS:
        seen: set[str] = set()
        key = "name" if section in ("stocks", "templates") else "id"
        for index, entry in enumerate(getattr(data, section)):
            value = getattr(entry, key)
            if value in seen:
                problems.append(f"{section}[{index}] ({value}).{key}: appears twice in the file")
            seen.add(value)
    return problems
