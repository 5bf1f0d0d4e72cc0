"""The reference-data file (SPEC 2): its shape, and validation that names entry and field.

Parsing and checking only. Writing is ``dispatch.store.reference.upsert_reference_data``.
Channels take the vendor target models defined here (``VendorEmail``, ``VendorFtp``,
``VendorB2B``), never the raw JSON.

Hostile or careless input (SPEC 9) is refused, each problem naming entry and field: ids
with control characters, ``/`` or surrounding spaces; URLs with control characters, FTP
URLs with a ``..`` segment; a key that looks like a literal secret (``password``,
``api_key``, ``secret``, ``token`` at any depth of a vendor) instead of its ``*_env`` name;
and (:func:`secret_problems`, when the file is read) a secret named by an ``*_env`` key
whose value is set now but no protocol can carry.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from dispatch.channels.base import secret_problem
from dispatch.errors import ReferenceDataError

SecretResolver = Callable[[str], str | None]


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


def _text(value: Any) -> Any:
    """YAML reads 62701 or 0088-less codes as numbers; these fields are text."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _code(pattern: str, what: str) -> AfterValidator:
    regex = re.compile(pattern)

    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
        return value
    return AfterValidator(check)


def _quoted_code(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f"write it in quotes, e.g. \"{value:04d}\": as a number it loses "
                         "its leading zeros")
    return value


Text = Annotated[str, BeforeValidator(_text), Field(min_length=1, max_length=200)]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Country = Annotated[str, _code(r"[A-Z]{2}", "an ISO 3166-1 alpha-2 country code such as SE")]


class PostalAddressEntry(_Entry):
    """A structured address (``party.address``), for standard documents (SPEC 2, turn 2)."""

    street: Text | None = None
    additional_street: Text | None = None
    city: Text | None = None
    postal_code: Annotated[str, BeforeValidator(_text), Field(max_length=20)] | None = None
    region: Text | None = None
    country: Country | None = None


class PartyEntry(_Entry):
    """Who a vendor or the buyer is in standard documents (UBL, cXML, Order-X)."""

    legal_name: Text | None = None
    endpoint_id: Annotated[str, BeforeValidator(_text), Field(min_length=1, max_length=100)
                           ] | None = None
    endpoint_scheme: Annotated[str, BeforeValidator(_quoted_code), _code(
        r"[0-9]{4}", "an ISO 6523 ICD of four digits such as \"0088\" (in quotes)")
    ] | None = None
    vat_id: Annotated[str, Field(min_length=1, max_length=50)] | None = None
    address: PostalAddressEntry | None = None


class CxmlEntry(_Entry):
    """A cXML credential; the shared secret only by the name of its environment variable."""

    domain: str = Field(min_length=1, max_length=100)
    identity: Text
    shared_secret_env: EnvName | None = None


class BuyerEntry(_Entry):
    """The file's ``buyer:`` block: who we are in documents (all optional)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    currency: Annotated[str, _code(r"[A-Z]{3}", "an ISO 4217 currency code such as EUR")
                        ] | None = None
    email: str | None = Field(default=None, max_length=200)
    party: PartyEntry | None = None
    cxml: CxmlEntry | None = None


class VendorEntry(_Entry):
    id: Id50
    name: str = Field(min_length=1, max_length=200)
    allow_overstock: bool = False
    send_changes: bool = False
    email: VendorEmail | None = None
    ftp: VendorFtp | None = None
    b2b: VendorB2B | None = None
    # SPEC 4: the XML template this vendor gets (None: the canonical document), and who the
    # vendor is in standard documents. Stored in the vendor's ``extra`` JSON.
    xml_template: Id50 | None = None
    party: PartyEntry | None = None
    cxml: CxmlEntry | None = None

    def standard_data(self) -> dict[str, Any]:
        """``xml_template``, ``party`` and ``cxml`` as stored (only those given)."""
        return self.model_dump(mode="json", include={"xml_template", "party", "cxml"},
                               exclude_none=True)

    @model_validator(mode="after")
    def _responses(self) -> VendorEntry:
        """The ``responses:`` block (an extra key, stored as given) checked field by field;
        an inbox reuses the ``ftp:`` entry's credentials and host key, so it needs one."""
        raw = (self.model_extra or {}).get("responses")
        if raw is None:
            return self
        try:
            block = VendorResponses.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors(include_input=False)[0]
            where = ".".join(str(p) for p in err["loc"])
            message = err["msg"].removeprefix("Value error, ")
            raise ValueError(f"responses{'.' + where if where else ''}: {message}") from None
        if block.inbox and self.ftp is None:
            raise ValueError("responses.inbox: needs the vendor's ftp: entry (its credentials "
                             "and host key are used to collect the inbox)")
        return self


class StockEntry(_Entry):
    name: Id50


class DeviceEntry(_Entry):
    id: Id50
    stock: Id50


class ItemVendorEntry(_Entry):
    quoted: bool = False
    atelier_code: int | None = None
    price: Decimal | None = Field(default=None, ge=0)


def _gtin(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError("write the GTIN in quotes (\"07311111111116\"): as a number it "
                         "loses its leading zeros")
    return value


class ItemEntry(_Entry):
    id: Id50
    name: str = Field(min_length=1, max_length=400)
    unit: str = Field(min_length=1, max_length=50)
    vendors: dict[Id50, ItemVendorEntry] = Field(default_factory=dict)
    # SPEC 2 (turn 2): UN/ECE Recommendation 20 unit code and GTIN, for standard documents
    unit_code: Annotated[str, _code(r"[A-Za-z0-9]{1,3}", "a UN/ECE Recommendation 20 unit "
                                    "code such as C62, H87 or BX")] | None = None
    gtin: Annotated[str, BeforeValidator(_gtin), _code(r"[0-9]{8,14}", "a GTIN of 8 to 14 "
                                                       "digits")] | None = None


def _relative_path(value: str) -> str:
    path = PurePosixPath(value.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts:
        raise ValueError("must be a path under the templates directory (no '..', not absolute)")
    return str(path)


TemplatePath = Annotated[str, Field(min_length=1, max_length=400)]


class TemplateEntry(_Entry):
    """A named template. PDF and Excel: one ``file``. XML (SPEC 4): one ``file`` or
    ``files:`` per dispatch kind, an optional ``schema:`` (.xsd/.dtd) and ``needs:``."""

    name: Id50
    format: Literal["PDF", "Excel", "XML"]
    file: TemplatePath | None = None
    files: dict[str, TemplatePath] | None = None
    schema_file: TemplatePath | None = Field(default=None, alias="schema")
    needs: list[str] | None = None

    @field_validator("file", "schema_file")
    @classmethod
    def _relative(cls, value: str | None) -> str | None:
        return None if value is None else _relative_path(value)

    @field_validator("files")
    @classmethod
    def _relative_files(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return None if value is None else {k: _relative_path(v) for k, v in value.items()}

    @model_validator(mode="after")
    def _shape(self) -> TemplateEntry:
        if self.format != "XML":
            extra = [k for k, v in (("files", self.files), ("schema", self.schema_file),
                                    ("needs", self.needs)) if v is not None]
            if extra:
                raise ValueError(f"{extra[0]}: only an XML template has it; a {self.format} "
                                 "template is one file")
            if self.file is None:
                raise ValueError(f"file: required; a {self.format} template is one file "
                                 "under the templates directory")
            return self
        from dispatch.documents.xml_spec import xml_template_from_entry
        from dispatch.errors import TemplateError

        try:
            xml_template_from_entry(self.xml_entry())
        except TemplateError as exc:
            # the message starts "template 'name': "; the entry is named by the caller
            raise ValueError(str(exc).split(": ", 1)[-1]) from None
        return self

    @property
    def first_file(self) -> str:
        """``file``, or the purchase file of ``files:`` (what the file column holds)."""
        return self.file or (self.files or {}).get("purchase") or ""

    def xml_entry(self) -> dict[str, Any]:
        """The entry as ``xml_spec.xml_template_from_entry`` reads it."""
        entry: dict[str, Any] = {"name": self.name, "format": "XML"}
        for key, value in (("file", self.file), ("files", self.files),
                           ("schema", self.schema_file), ("needs", self.needs)):
            if value is not None:
                entry[key] = value
        return entry


class LocationEntry(_Entry):
    id: Id60
    locationName: str = Field(min_length=1, max_length=200)
    addressLine1: str = Field(min_length=1, max_length=200)
    addressLine2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    province: str = Field(min_length=1, max_length=100)
    countryTitle: str = Field(min_length=1, max_length=100)
    zipCode: str = Field(min_length=1, max_length=20)
    countryCode: Country | None = None  # for standard documents (SPEC 2, turn 2)

    @field_validator("zipCode", mode="before")
    @classmethod
    def _zip_text(cls, value: Any) -> Any:
        # YAML reads 62701 as an int; a zip code is text.
        return str(value) if isinstance(value, int) else value


class ReferenceData(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    vendors: list[VendorEntry] = Field(default_factory=list)
    stocks: list[StockEntry] = Field(default_factory=list)
    devices: list[DeviceEntry] = Field(default_factory=list)
    items: list[ItemEntry] = Field(default_factory=list)
    templates: list[TemplateEntry] = Field(default_factory=list)
    locations: list[LocationEntry] = Field(default_factory=list)
    buyer: BuyerEntry | None = None


_SECTIONS = ("vendors", "stocks", "devices", "items", "templates", "locations")


def _entry_label(raw: Any, section: str, index: int) -> str:
    label = f"{section}[{index}]"
    if isinstance(raw, dict):
        key = raw.get("name") if section in ("stocks", "templates") else raw.get("id")
        if isinstance(key, str | int):
            label += f" ({key})"
    return label


# A key naming a secret itself (not the variable holding it): ``password``, ``ftp_password``,
# ``api_key``, ``apikey``, ``client_secret``, ``access_token``…; ``*_env`` keys are the fix.
_LITERAL_SECRET = re.compile(r"(?:^|_)(password|passwd|secret|token|api_?key)$")
# ``*_env`` keys whose value travels in an HTTP header (Bearer): ASCII only.
HEADER_SECRET_KEYS = frozenset({"api_key_env", "key_env"})


def _walk(value: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    """(dotted path, key, value) of every mapping key under ``value``, at any depth."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            yield where, str(key), item
            yield from _walk(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")


def literal_secret_problems(raw: Mapping[str, Any]) -> list[str]:
    """Keys of vendor entries that look like a secret written into the file (SPEC 9)."""
    problems = []
    vendors = raw.get("vendors")
    for index, vendor in enumerate(vendors if isinstance(vendors, list) else []):
        label = _entry_label(vendor, "vendors", index)
        for where, key, value in _walk(vendor, ""):
            name = key.lower().replace("-", "_")
            if _LITERAL_SECRET.search(name) and value not in (None, ""):
                problems.append(
                    f"{label}.{where}: looks like a secret written into the file; keep it in "
                    f"an environment variable and name that variable instead ({name}_env: "
                    f"{_env_example(label, name)})")
    return problems


def _env_example(label: str, name: str) -> str:
    vendor = re.sub(r"[^A-Za-z0-9]+", "_", label.partition("(")[2].rstrip(")")).strip("_")
    return f"{vendor.upper() or 'VENDOR'}_{name.upper()}"


def vendor_secret_problems(label: str, vendor: Mapping[str, Any],
                           secrets: SecretResolver) -> list[str]:
    """``*_env`` keys of one vendor (a parsed entry's dump or a stored row) whose variable
    is set to a value no protocol can carry; each names the variable, never the value."""
    problems = []
    for where, key, name in _walk(vendor, ""):
        if not key.endswith("_env") or not isinstance(name, str) or not name:
            continue
        value = secrets(name)
        if not value:
            continue  # unset now: checked again at the send
        problem = secret_problem(value, header=key in HEADER_SECRET_KEYS)
        if problem is not None:
            problems.append(f"{label}.{where}: environment variable {name}: the value {problem}")
    return problems


def secret_problems(data: ReferenceData, secrets: SecretResolver) -> list[str]:
    """:func:`vendor_secret_problems` for every vendor of ``data``."""
    problems = []
    for index, vendor in enumerate(data.vendors):
        label = f"vendors[{index}] ({vendor.id})"
        problems += vendor_secret_problems(label, vendor.model_dump(mode="json"), secrets)
    return problems


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
    problems = literal_secret_problems(raw)
    data: ReferenceData | None = None
    try:
        data = ReferenceData.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors(include_input=False):
            loc = list(err["loc"])
            if not loc:
                problems.append(err["msg"])
                continue
            section = str(loc[0])
            if section == "buyer":
                field = ".".join(str(part) for part in loc[1:]) or "(block)"
                problems.append(f"buyer.{field}: {err['msg']}")
                continue
            if section not in _SECTIONS:
                problems.append(f"{section}: unknown section; allowed: "
                                f"{', '.join(_SECTIONS)}, buyer")
                continue
            if len(loc) >= 2 and isinstance(loc[1], int):
                entries = raw.get(section) or []
                label = _entry_label(entries[loc[1]], section, loc[1])
                field = ".".join(str(part) for part in loc[2:]) or "(entry)"
                problems.append(f"{label}.{field}: {err['msg']}")
            else:
                problems.append(f"{section}: {err['msg']}")
    # Raised outside the except: the validation error (inputs may be secrets) is not chained.
    if problems or data is None:
        raise ReferenceDataError(source, problems)
    return data


def read_reference_file(path: Path, *,
                        secrets: SecretResolver | None = os.environ.get) -> ReferenceData:
    """Read and parse a reference-data file (YAML, or JSON by extension).

    ``secrets``: how the ``*_env`` variables are read to refuse, at load time, a value that
    is set but no protocol can carry (default: the environment; None skips the check).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReferenceDataError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    data = parse_reference_text(text, str(path))
    if secrets is not None:
        problems = secret_problems(data, secrets)
        if problems:
            raise ReferenceDataError(str(path), problems)
    return data


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
