"""Real response documents for tests: the official Peppol examples adapted to a test's
order (its id, its line ids, the dispatch answered), and cXML ConfirmationRequests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lxml import etree

from tests.conftest import ROOT

EXAMPLES = ROOT.parent / "shared" / "standards" / "peppol-bis-ordering-3" / "examples"
NS = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
      "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"}
ORDER_RESPONSE = "OrderResponse_Example.xml"  # T76, CA with three lines
ADVANCED = "OrderResponseAdvanced_Example.xml"  # T116, CA answering an order change
SC1 = "advanced-ordering/advanced_ordering_sc1/OrderResponse_sc1.xml"  # CA, quantity 5
SC2 = "advanced-ordering/advanced_ordering_sc2/OrderResponse_sc2.xml"  # AP of a change


def example(name: str) -> Path:
    return EXAMPLES / name


def peppol(name: str, *, order_id: str, line_ids: Sequence[str] = (), change: str | None = None,
           code: str | None = None, drop_lines: bool = False) -> bytes:
    """The example ``name`` answering ``order_id``: its i-th line names ``line_ids[i]``
    (LineItem/ID and OrderLineReference/LineID), OrderChangeDocumentReference/ID
    ``change`` (removed when None)."""
    root = etree.fromstring(example(name).read_bytes())
    root.find("cac:OrderReference/cbc:ID", NS).text = order_id
    reference = root.find("cac:OrderChangeDocumentReference", NS)
    if reference is not None and change is None:
        root.remove(reference)
    elif reference is not None:
        reference.find("cbc:ID", NS).text = change
    if code is not None:
        root.find("cbc:OrderResponseCode", NS).text = code
    for index, line in enumerate(root.findall("cac:OrderLine", NS)):
        if drop_lines or index >= len(line_ids):
            root.remove(line)
            continue
        line.find("cac:LineItem/cbc:ID", NS).text = line_ids[index]
        ref = line.find("cac:OrderLineReference/cbc:LineID", NS)
        if ref is not None:
            ref.text = line_ids[index]
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


CXML_DOCTYPE = '<!DOCTYPE cXML SYSTEM "http://xml.cxml.org/schemas/cXML/1.2.063/Fulfill.dtd">'


def cxml(kind: str, *, order_id: str, items: Sequence[tuple[int, int, str, str | None]] = (),
         dispatch: int = 1, supplier_order: str | None = "SO-77", payload: str = "c-1",
         doctype: bool = True) -> bytes:
    """A cXML 1.2.063 ConfirmationRequest of ``kind`` (accept, reject, detail, allDetail,
    except, backordered, replace). ``items``: (lineNumber, quantity, status type,
    deliveryDate)."""
    lines = []
    for number, quantity, status, date in items:
        attrs = f' deliveryDate="{date}"' if date else ""
        lines.append(
            f'<ConfirmationItem quantity="{quantity}" lineNumber="{number}">'
            f'<UnitOfMeasure>EA</UnitOfMeasure>'
            f'<ConfirmationStatus quantity="{quantity}" type="{status}"{attrs}>'
            f'<UnitOfMeasure>EA</UnitOfMeasure></ConfirmationStatus></ConfirmationItem>')
    reference = (f'<IdReference identifier="{supplier_order}" domain="supplierOrderID"/>'
                 if supplier_order else "")
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        + (CXML_DOCTYPE + "\n" if doctype else "")
        + f'<cXML payloadID="{payload}@vendor.test" timestamp="2024-05-06T07:08:09+00:00" '
        'version="1.2.063" xml:lang="en-US">'
        '<Header><From><Credential domain="DUNS"><Identity>123456789</Identity></Credential>'
        '</From><To><Credential domain="NetworkId"><Identity>buyer</Identity></Credential></To>'
        '<Sender><Credential domain="DUNS"><Identity>123456789</Identity></Credential>'
        '<UserAgent>stand-in</UserAgent></Sender></Header>'
        f'<Request><ConfirmationRequest><ConfirmationHeader type="{kind}" '
        f'noticeDate="2024-05-06T07:08:09+00:00">{reference}'
        '<Comments xml:lang="en">answered by a test</Comments></ConfirmationHeader>'
        f'<OrderReference orderID="{order_id}"><DocumentReference '
        f'payloadID="{order_id}.{dispatch}@buyer"/></OrderReference>'
        + "".join(lines) + "</ConfirmationRequest></Request></cXML>")
    return text.encode()
