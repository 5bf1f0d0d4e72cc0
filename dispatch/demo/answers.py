"""The demo's order responses (SPEC 8): DELTA's stand-in answers, EMBER never does.

DELTA (Peppol over SFTP) answers within the hour: after its Peppol documents arrived, its
stand-in reads the latest one from the SFTP folder and posts a Peppol BIS OrderResponse
(T76, ``CA``: the first line accepted with a later promised date, the others as ordered) to
``POST /vendor/order-responses`` with its vendor key. EMBER must answer within 3 s and
never does: the ``collect-responses`` sweep flags its order Overdue once and the embedded
runner sends the reminder email (``{OrderId}_reminder_{n}.pdf``).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml
from lxml import etree

from dispatch.reference_data import ReferenceData, parse_reference_text

RESPONSES: dict[str, dict[str, str]] = {
    "DELTA": {"key_env": "DELTA_RESPONSE_KEY", "within": "1h"},
    "EMBER": {"key_env": "EMBER_RESPONSE_KEY", "within": "3s"},
}
LATER = dt.timedelta(days=14)  # how much later DELTA promises its first line

UBL = "urn:oasis:names:specification:ubl:schema:xsd:"
NS: dict[str | None, str] = {"cbc": UBL + "CommonBasicComponents-2",
                             "cac": UBL + "CommonAggregateComponents-2"}


def with_responses(data: dict[str, Any], source: str) -> ReferenceData:
    """``data`` (reference data as a dict) with DELTA's and EMBER's ``responses:`` blocks;
    sets each vendor's response key in the environment (a random one per demo)."""
    for vendor in data.get("vendors", []):
        block = RESPONSES.get(vendor["id"])
        if block is not None:
            vendor["responses"] = dict(block)
            os.environ.setdefault(block["key_env"], secrets.token_urlsafe(16))
    return parse_reference_text(yaml.safe_dump(data), source)


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str
         ) -> etree._Element:
    prefix, name = tag.split(":")
    node = etree.SubElement(parent, f"{{{NS[prefix]}}}{name}", attrs)
    if text is not None:
        node.text = text
    return node


def peppol_order_response(order_xml: bytes, *, today: dt.date) -> bytes:
    """A Peppol BIS OrderResponse (T76) to a received Peppol Order or OrderChange: ``CA``,
    its first line confirmed with a promised date ``LATER`` than ``today``."""
    order = etree.fromstring(order_xml, etree.XMLParser(resolve_entities=False,
                                                        no_network=True))
    order_id = (order.findtext("cac:OrderReference/cbc:ID", namespaces=NS)
                or order.findtext("cbc:ID", namespaces=NS))
    lines = order.findall("cac:OrderLine/cac:LineItem", NS)
    nsmap = {None: f"{UBL}OrderResponse-2", **NS}
    root = etree.Element(f"{{{UBL}OrderResponse-2}}OrderResponse", nsmap=nsmap)
    _sub(root, "cbc:CustomizationID", "urn:fdc:peppol.eu:poacc:trns:order_response:3")
    _sub(root, "cbc:ProfileID", "urn:fdc:peppol.eu:poacc:bis:ordering:3")
    _sub(root, "cbc:ID", f"DELTA-OR-{order_id}")
    _sub(root, "cbc:SalesOrderID", f"DELTA-SO-{order_id}")
    _sub(root, "cbc:IssueDate", today.isoformat())
    _sub(root, "cbc:OrderResponseCode", "CA")
    _sub(root, "cbc:Note", "First line ships two weeks later than asked; the rest as ordered")
    _sub(root, "cbc:DocumentCurrencyCode", "EUR")
    _sub(_sub(root, "cac:OrderReference"), "cbc:ID", order_id)
    for role in ("cac:SellerSupplierParty", "cac:BuyerCustomerParty"):
        source = order.find(role, NS)
        if source is not None:
            root.append(source)
    for index, item in enumerate(lines):
        line = _sub(_sub(root, "cac:OrderLine"), "cac:LineItem")
        _sub(line, "cbc:ID", item.findtext("cbc:ID", namespaces=NS))
        quantity = item.find("cbc:Quantity", NS)
        _sub(line, "cbc:Quantity", quantity.text if quantity is not None else "0",
             unitCode=quantity.get("unitCode", "C62") if quantity is not None else "C62")
        _sub(line, "cbc:LineStatusCode", "3" if index == 0 else "5")
        if index == 0:
            period = _sub(_sub(line, "cac:Delivery"), "cac:PromisedDeliveryPeriod")
            _sub(period, "cbc:EndDate", (today + LATER).isoformat())
        _sub(_sub(line, "cac:Item"), "cbc:Name",
             item.findtext("cac:Item/cbc:Name", namespaces=NS) or "item")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def latest_received(folder: Path, order_id: str) -> Path:
    """The order's last document in the vendor's folder (``{OrderId}_{kind}_{n}.xml``)."""
    files = sorted(folder.glob(f"{order_id}_*.xml"),
                   key=lambda p: int(p.stem.rpartition("_")[2] or 0))
    if not files:
        raise RuntimeError(f"no document of {order_id} reached {folder}")
    return files[-1]


def vendor_answers(base: str, folder: Path, order_id: str, say: Callable[[str], None]
                   ) -> dict[str, Any]:
    """DELTA's stand-in answers its latest document of ``order_id`` over HTTP."""
    document = latest_received(folder, order_id)
    body = peppol_order_response(document.read_bytes(), today=dt.date.today())
    key = os.environ[RESPONSES["DELTA"]["key_env"]]
    answer = httpx.post(f"{base}/vendor/order-responses", content=body, timeout=30,
                        headers={"Authorization": f"Bearer {key}",
                                 "Content-Type": "application/xml"}, trust_env=False)
    answer.raise_for_status()
    say(f"- DELTA's stand-in read {document.name} and posted a Peppol OrderResponse (CA) to "
        f"POST /vendor/order-responses: HTTP {answer.status_code} {answer.text}")
    return answer.json()  # type: ignore[no-any-return]


def wait_overdue(get_order: Callable[[str], dict[str, Any]], order_id: str,
                 timeout: float = 60) -> dict[str, Any]:
    """The order's detail once it is Overdue and its reminder settled."""
    deadline = time.monotonic() + timeout
    while True:
        detail = get_order(order_id)
        reminders = [d for d in detail["Deliveries"] if d["Kind"] == "reminder"]
        if (detail["Response"]["Status"] == "Overdue" and reminders
                and all(d["Status"] in ("Delivered", "Failed") for d in reminders)):
            return detail
        if time.monotonic() > deadline:
            raise RuntimeError(f"{order_id}: no overdue reminder within {timeout:.0f} s "
                               f"(Response {detail['Response']})")
        time.sleep(0.2)  # polling the order detail, as a person watching would


def response_lines(detail: dict[str, Any]) -> list[str]:
    """The order's Response and its lines' answers, for printing."""
    r = detail["Response"]
    out = [f"{detail['Id']}: Response {r['Status']} (dispatch #{r['DispatchNumber']}, "
           f"received {r['ReceivedAt']}, vendor order {r['VendorOrderId']})"]
    for line in detail["PurchaseOrderItems"]:
        ordered = line["TotalQuantity"] - (line["CancelledQuantity"] or 0)
        out.append(f"  {line['ItemId'] or line.get('CustomItemId')}: ordered {ordered}, "
                   f"{line['ResponseStatus']}, confirmed {line['ConfirmedQuantity']}, "
                   f"promised {line['PromisedDate']}")
    return out
