"""Reading an order response document: UBL OrderResponse (Peppol BIS T76 / T116) or cXML
ConfirmationRequest, with lxml and nothing unsafe.

The parser never fetches anything and never expands an entity: ``resolve_entities=False``,
``no_network=True``, ``load_dtd=False``, and a resolver that refuses every external
resource. A body carrying a DTD of its own (an internal subset: where ENTITY declarations
live) or an entity declaration is refused before parsing, so billion-laughs and XXE
payloads are a 400 whatever the parser would have done. The one DOCTYPE accepted is the
bare ``<!DOCTYPE cXML SYSTEM "…">`` line the cXML standard puts on every document: its DTD
is never loaded.

:func:`parse_response` returns the plain text SPEC 8 reads
(:class:`~dispatch.rules.responses.ParsedResponse`); the rules decide what it means.
"""

from __future__ import annotations

import re
from typing import Any

from lxml import etree

from dispatch.errors import DispatchError
from dispatch.rules.responses import (
    CXML,
    UBL,
    ParsedResponse,
    ResponseLine,
    ResponsePortion,
)

UBL_NS = "urn:oasis:names:specification:ubl:schema:xsd:OrderResponse-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
NS = {"r": UBL_NS, "cbc": CBC, "cac": CAC}
PEPPOL_CUSTOMIZATIONS = (
    "urn:fdc:peppol.eu:poacc:trns:order_response:3",
    "urn:fdc:peppol.eu:poacc:trns:order_response_advanced:3",
)
_DECLARATION = re.compile(rb"<!\s*(ENTITY|ATTLIST|ELEMENT|NOTATION)\b")
_DOCTYPE = re.compile(rb"<!DOCTYPE\b([^>\[]*)(\[)?", re.IGNORECASE)


class ResponseDocumentError(DispatchError):
    """The body is not a response document this service reads (HTTP 400); the message
    names the element and what to send instead."""


class _RefuseAll(etree.Resolver):
    """Any external DTD or entity the parser would load: refused (never fetched)."""

    def resolve(self, system_url: str | None, public_id: str | None, context: Any) -> Any:
        raise ResponseDocumentError(f"body: refers to an external resource ({system_url!r}); "
                                    "nothing is fetched: send the document without it")


def _parser() -> etree.XMLParser:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             dtd_validation=False, huge_tree=False, remove_pis=True,
                             collect_ids=False)
    parser.resolvers.add(_RefuseAll())
    return parser


def _text_for_scan(body: bytes) -> bytes:
    """The body as UTF-8 bytes for the declaration scan (UTF-16 bodies included)."""
    for bom, codec in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if body.startswith(bom):
            return body.decode(codec, errors="replace").encode()
    if body[:4] in (b"<\x00?\x00", b"\x00<\x00?"):
        codec = "utf-16-le" if body[0:1] == b"<" else "utf-16-be"
        return body.decode(codec, errors="replace").encode()
    return body


def check_declarations(body: bytes) -> bytes:
    """Refuse a DTD carried in the body, or any entity (or other markup) declaration.

    Returns the body to parse: a bare cXML DOCTYPE line blanked out (same length, so line
    numbers hold), because libxml2 asks for the external DTD of a DOCTYPE even with DTD
    loading off; the resolver would refuse it, and a cXML document needs nothing from it.
    """
    text = _text_for_scan(body)
    declared = _DECLARATION.search(text)
    if declared is not None:
        raise ResponseDocumentError(
            f"body: carries a <!{declared.group(1).decode()} declaration; entity and DTD "
            "declarations are never expanded or fetched here: send the document without "
            "a DOCTYPE")
    doctype = _DOCTYPE.search(text)
    if doctype is None:
        return body
    if doctype.group(2):
        raise ResponseDocumentError("body: carries a DTD (a DOCTYPE with an internal "
                                    "subset); send the document without it")
    if not doctype.group(1).strip().startswith(b"cXML"):
        raise ResponseDocumentError("body: carries a DOCTYPE; a UBL OrderResponse has none: "
                                    "send the document without it")
    if text is not body:
        raise ResponseDocumentError("body: a UTF-16 document with a DOCTYPE; send it as "
                                    "UTF-8, or without the DOCTYPE")
    start, end = doctype.span()
    close = body.find(b">", end)
    if close < 0:
        raise ResponseDocumentError("body: an unfinished DOCTYPE; not well-formed XML")
    return body[:start] + b" " * (close + 1 - start) + body[close + 1:]


def parse_xml(body: bytes) -> etree._Element:
    """The root element of a safe, well-formed XML body (ResponseDocumentError if not)."""
    if not body.strip():
        raise ResponseDocumentError("body: empty; send a UBL OrderResponse or a cXML "
                                    "ConfirmationRequest")
    body = check_declarations(body)
    try:
        root = etree.fromstring(body, _parser())
    except ResponseDocumentError:
        raise
    except etree.XMLSyntaxError as exc:
        raise ResponseDocumentError(f"body: not well-formed XML (line {exc.lineno}: "
                                    f"{exc.msg})") from None
    except ValueError as exc:  # e.g. a str with an encoding declaration
        raise ResponseDocumentError(f"body: not XML this service can read ({exc})") from None
    tree = root.getroottree()
    if tree.docinfo.internalDTD is not None:
        raise ResponseDocumentError("body: carries a DTD; send the document without it")
    for node in root.iter(etree.Entity):
        raise ResponseDocumentError(f"body: entity reference {node.text!r} (line "
                                    f"{node.sourceline}); entities are never expanded here")
    return root


def parse_response(body: bytes) -> ParsedResponse:
    """What SPEC 8 reads from ``body``; ResponseDocumentError (a 400) naming the element."""
    root = parse_xml(body)
    name = etree.QName(root)
    if name.namespace == UBL_NS and name.localname == "OrderResponse":
        return _ubl(root)
    if name.localname == "cXML" and name.namespace is None:
        return _cxml(root)
    shown = f"{{{name.namespace}}}{name.localname}" if name.namespace else name.localname
    raise ResponseDocumentError(
        f"body: root element {shown} is not a UBL OrderResponse ({UBL_NS}) or a cXML "
        "document with a ConfirmationRequest")


def _text(node: etree._Element | None) -> str | None:
    if node is None or node.text is None:
        return None
    value = node.text.strip()
    return value or None


def _first(root: etree._Element, path: str) -> str | None:
    found = root.find(path, NS)
    return _text(found)


def _ubl(root: etree._Element) -> ParsedResponse:
    customization = _first(root, "cbc:CustomizationID")
    if customization not in PEPPOL_CUSTOMIZATIONS:
        raise ResponseDocumentError(
            f"CustomizationID: {customization!r} is not a Peppol BIS order response; use "
            f"{' or '.join(PEPPOL_CUSTOMIZATIONS)}")
    code = _first(root, "cbc:OrderResponseCode")
    if code is None:
        raise ResponseDocumentError("OrderResponseCode: missing; say AB, AP, RE or CA")
    order = _first(root, "cac:OrderReference/cbc:ID")
    if order is None:
        raise ResponseDocumentError("OrderReference/ID: missing; name the purchase order "
                                    "this answers (our OrderId)")
    lines = []
    for index, node in enumerate(root.findall("cac:OrderLine", NS), start=1):
        element = f"OrderLine[{index}]"
        item = node.find("cac:LineItem", NS)
        if item is None:
            raise ResponseDocumentError(f"{element}/LineItem: missing")
        ids = []
        line_id = _first(item, "cbc:ID")
        if line_id is not None:
            ids.append((f"{element}/LineItem/ID", line_id))
        reference = _first(node, "cac:OrderLineReference/cbc:LineID")
        if reference is not None:
            ids.append((f"{element}/OrderLineReference/LineID", reference))
        if not ids:
            raise ResponseDocumentError(f"{element}/LineItem/ID: missing; name the order "
                                        "line (our PurchaseOrderItemId)")
        period = "cac:Delivery/cac:PromisedDeliveryPeriod/cbc:"
        lines.append(ResponseLine(
            element=f"{element}/LineItem", ids=tuple(ids),
            code=_first(item, "cbc:LineStatusCode"), quantity=_first(item, "cbc:Quantity"),
            end_date=_first(item, period + "EndDate"),
            start_date=_first(item, period + "StartDate")))
    period = "cac:Delivery/cac:PromisedDeliveryPeriod/cbc:"
    return ParsedResponse(
        document_type=UBL, document_id=_first(root, "cbc:ID"), order_reference=order,
        order_element="OrderReference/ID", code=code, code_element="OrderResponseCode",
        dispatch_reference=_first(root, "cac:OrderChangeDocumentReference/cbc:ID"),
        dispatch_element="OrderChangeDocumentReference/ID",
        vendor_order_id=_first(root, "cbc:SalesOrderID"), note=_first(root, "cbc:Note"),
        end_date=_first(root, period + "EndDate"), start_date=_first(root, period + "StartDate"),
        lines=tuple(lines))


def _attr(node: etree._Element | None, name: str) -> str | None:
    if node is None:
        return None
    value = node.get(name)
    return value.strip() or None if value is not None else None


def _cxml(root: etree._Element) -> ParsedResponse:
    request = root.find("Request/ConfirmationRequest")
    if request is None:
        raise ResponseDocumentError("cXML/Request/ConfirmationRequest: missing; this "
                                    "endpoint takes order confirmations only")
    header = request.find("ConfirmationHeader")
    code = _attr(header, "type")
    if code is None:
        raise ResponseDocumentError("ConfirmationHeader@type: missing; say accept, reject, "
                                    "detail, allDetail, except, backordered or replace")
    reference = request.find("OrderReference")
    order = _attr(reference, "orderID")
    if order is None:
        raise ResponseDocumentError("OrderReference@orderID: missing; name the purchase "
                                    "order this confirms (our OrderId)")
    document = reference.find("DocumentReference") if reference is not None else None
    vendor_order_id = None
    if header is not None:
        vendor_order_id = (_attr(header.find("IdReference"), "identifier")
                           or _attr(header, "confirmID"))
    lines = []
    for index, item in enumerate(request.findall("ConfirmationItem"), start=1):
        element = f"ConfirmationItem[{index}]"
        ids = tuple((f"{element}//Extrinsic[@name='PurchaseOrderItemId']", text)
                    for ext in item.iter("Extrinsic")
                    if ext.get("name") == "PurchaseOrderItemId"
                    and (text := "".join(ext.itertext()).strip()))
        line_number = _attr(item, "lineNumber")
        if line_number is None and not ids:
            raise ResponseDocumentError(f"{element}@lineNumber: missing; give the line's "
                                        "lineNumber from our OrderRequest")
        portions = tuple(ResponsePortion(type=_attr(s, "type") or "", quantity=_attr(s, "quantity"),
                                         delivery_date=_attr(s, "deliveryDate"))
                         for s in item.findall("ConfirmationStatus"))
        lines.append(ResponseLine(element=element, ids=ids, line_number=line_number,
                                  portions=portions))
    comments = header.find("Comments") if header is not None else None
    note = "".join(comments.itertext()).strip() or None if comments is not None else None
    return ParsedResponse(
        document_type=CXML, document_id=_attr(root, "payloadID"), order_reference=order,
        order_element="OrderReference@orderID", code=code, code_element="ConfirmationHeader@type",
        dispatch_reference=_attr(document, "payloadID"),
        dispatch_element="OrderReference/DocumentReference@payloadID",
        vendor_order_id=vendor_order_id, note=note, lines=tuple(lines))
