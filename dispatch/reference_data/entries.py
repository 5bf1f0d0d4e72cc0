"""The entries of the reference-data file (SPEC 2): parties, vendors, stocks, devices,
items, templates, locations, and the whole file as ``ReferenceData``."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

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

from dispatch.reference_data.vendor_targets import (
    Id50,
    Id60,
    VendorB2B,
    VendorEmail,
    VendorFtp,
    VendorResponses,
    _Entry,
)


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
