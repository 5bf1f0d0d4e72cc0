"""The reference-data file (SPEC 2): its shape, and validation that names entry and field.

``vendor_targets`` (the vendor's channel targets and the shared id/URL checks),
``entries`` (every entry and ``ReferenceData``), ``reading`` (parsing, secret checks,
duplicates); their public names are all importable from here.

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

from dispatch.reference_data.entries import (
    BuyerEntry,
    Country,
    CxmlEntry,
    DeviceEntry,
    EnvName,
    ItemEntry,
    ItemVendorEntry,
    LocationEntry,
    PartyEntry,
    PostalAddressEntry,
    ReferenceData,
    StockEntry,
    TemplateEntry,
    TemplatePath,
    Text,
    VendorEntry,
)
from dispatch.reference_data.reading import (
    HEADER_SECRET_KEYS,
    SecretResolver,
    check_duplicates,
    literal_secret_problems,
    parse_reference_text,
    read_reference_file,
    secret_problems,
    vendor_secret_problems,
)
from dispatch.reference_data.vendor_targets import (
    Id50,
    Id60,
    VendorB2B,
    VendorEmail,
    VendorFtp,
    VendorResponses,
)

__all__ = [
    "BuyerEntry",
    "Country",
    "CxmlEntry",
    "DeviceEntry",
    "EnvName",
    "HEADER_SECRET_KEYS",
    "Id50",
    "Id60",
    "ItemEntry",
    "ItemVendorEntry",
    "LocationEntry",
    "PartyEntry",
    "PostalAddressEntry",
    "ReferenceData",
    "SecretResolver",
    "StockEntry",
    "TemplateEntry",
    "TemplatePath",
    "Text",
    "VendorB2B",
    "VendorEmail",
    "VendorEntry",
    "VendorFtp",
    "VendorResponses",
    "check_duplicates",
    "literal_secret_problems",
    "parse_reference_text",
    "read_reference_file",
    "secret_problems",
    "vendor_secret_problems",
]
