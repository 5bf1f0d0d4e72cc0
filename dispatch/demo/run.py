"""`dispatch demo`: the whole product once, on one machine, with no other setup.

Starts stand-in vendors on 127.0.0.1 (SMTP relay, OpenSSH/asyncssh SFTP, B2B receiver), the
service in embedded mode (API + request executor + Prefect flows in-process) on a fresh
SQLite database, loads the sample reference data, creates and changes orders through the
HTTP API, waits for every delivery, prints what was delivered where with its evidence, and
leaves the documents in the output folder.
"""

from __future__ import annotations

import email
import json
import logging
import os
import secrets
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from dispatch.dispatching.reporting import format_table

ORDERS: list[tuple[str, dict[str, Any]]] = [
    ("all channels (email PDF+Excel+XML, SFTP XML, B2B)", {
        "VendorId": "ACME", "StockName": "Main", "DeviceId": "DEV-1", "Status": "Active",
        "CustomShipToId": "SITE-7", "Reference": "ERP 4711", "Notes": "Deliver to gate 3",
        "SendOptions": {"Channel": {"IsB2B": True, "IsFtp": True, "IsEmail": True},
                        "FTP": {"IsXml": True},
                        "Email": {"IsXml": True, "IsPdf": True, "IsExcel": True,
                                  "PdfTemplate": "standard-pdf",
                                  "ExcelTemplate": "standard-excel"}},
        "PurchaseOrderItems": [{"ItemId": "DRILL-5", "TotalQuantity": 10, "LineReference": "A1"},
                               {"ItemId": "GLOVE-L", "TotalQuantity": 40}]}),
    ("SFTP only (XML + PDF)", {
        "VendorId": "ACME", "StockName": "Main", "Status": "Active",
        "SendOptions": {"Channel": {"IsFtp": True},
                        "FTP": {"IsXml": True, "IsPdf": True, "PdfTemplateName": "standard-pdf"}},
        "PurchaseOrderItems": [{"ItemId": "DRILL-8", "TotalQuantity": 3, "DeviceId": "DEV-2"}]}),
    ("B2B only, first attempt answered 503 (retried)", {
        "VendorId": "CRANE", "StockName": "Plant7", "DeviceId": "DEV-7", "Status": "Active",
        "SendOptions": {"Channel": {"IsB2B": True}},
        "PurchaseOrderItems": [{"ItemId": "NUT-M8", "TotalQuantity": 25}]}),
    ("email only, created New, activated, then quantity raised (change)", {
        "VendorId": "BOLT", "StockName": "Main", "DeviceId": "DEV-1",
        "SendOptions": {"Channel": {"IsEmail": True},
                        "Email": {"IsXml": True, "IsExcel": True,
                                  "ExcelTemplate": "standard-excel"}},
        "PurchaseOrderItems": [{"ItemId": "NUT-M8", "TotalQuantity": 100},
                               {"CustomItemId": "BOLT-SPECIAL", "CustomItemQuantity": 5,
                                "CustomItemPricePerPiece": 7.5, "Note": "=1+1 stays text"}]}),
    ("email PDF + B2B, activated then cancelled", {
        "VendorId": "ACME", "StockName": "Main", "DeviceId": "DEV-2", "Status": "Active",
        "SendOptions": {"Channel": {"IsEmail": True, "IsB2B": True},
                        "Email": {"IsPdf": True, "PdfTemplate": "standard-pdf"}},
        "PurchaseOrderItems": [{"ItemId": "GLOVE-L", "TotalQuantity": 12}]}),
    # Vendor formats (templates/sample-standards.yaml): DELTA has xml_template: peppol
    ("SFTP XML to DELTA (xml_template: peppol), then quantity raised (Peppol OrderChange)", {
        "VendorId": "DELTA", "StockName": "Main", "Status": "Active", "Reference": "ERP 4712",
        "SendOptions": {"Channel": {"IsFtp": True}, "FTP": {"IsXml": True}},
        "PurchaseOrderItems": [{"ItemId": "CABLE-10", "TotalQuantity": 20},
                               {"ItemId": "FUSE-16", "TotalQuantity": 5}]}),
    ("email PDF to EMBER with the Order-X XML embedded (template order-x-pdf)", {
        "VendorId": "EMBER", "StockName": "Main", "Status": "Active",
        "SendOptions": {"Channel": {"IsEmail": True},
                        "Email": {"IsPdf": True, "PdfTemplate": "order-x-pdf"}},
        "PurchaseOrderItems": [{"ItemId": "FUSE-16", "TotalQuantity": 8}]}),
]


def say(text: str) -> None:
    print(text, flush=True)


class Client:
    def __init__(self, base: str, key: str) -> None:
        self.http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"},
                                 timeout=30, trust_env=False)

    def post(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(f"/ERP/PurchaseOrder/{endpoint}", json=body)
        response.raise_for_status()
        guid = response.json()["RequestGuid"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            result = self.http.get("/ERP/PurchaseOrder/GetRequestResult",
                                   params={"requestGuid": guid}).json()
            if result["Status"] in ("Completed", "Failed"):
                if result["Status"] == "Failed":
                    raise RuntimeError(f"{endpoint} failed: {result['Message']}")
                return result
            time.sleep(0.02)  # polling the API for the request's result, as an ERP would
        raise RuntimeError(f"{endpoint} request {guid} did not complete")

    def order(self, order_id: str) -> dict[str, Any]:
        return self.http.get("/ERP/PurchaseOrder/Get", params={"orderId": order_id}).json()


def run_demo(output: Path, *, port: int = 0, keep_serving: bool = False) -> int:
    output = output.resolve()
    if output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True)
    prefect_home = output / "prefect"
    os.environ.update({
        "PREFECT_HOME": str(prefect_home),  # the demo's flow runs, for the UI afterwards
        # The demo prints its own progress; every run's logs are in the Prefect UI.
        "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
    })
    from dispatch.orchestration.prefect_defaults import quiet_prefect_defaults

    quiet_prefect_defaults()
    os.environ.pop("PREFECT_API_URL", None)
    # Expected faults (the demo's 503) are shown in the final table, not as log noise.
    logging.getLogger("dispatch").setLevel(logging.ERROR)
    from dispatch.demo.world import StandinWorld

    say(f"dispatch demo: output in {output}")
    say("- starting stand-in vendors on 127.0.0.1 (SMTP relay, SFTP server, B2B receiver)")
    with StandinWorld(output / "vendors") as world:
        os.environ.update(world.env)
        return _run(output, world, port=port, keep_serving=keep_serving)


def _run(output: Path, world: Any, *, port: int, keep_serving: bool) -> int:
    import uvicorn

    from dispatch.demo.answers import RESPONSES, with_responses
    from dispatch.demo.world import STANDARDS_FILE
    from dispatch.documents.checks import check_template, check_xml
    from dispatch.service import build_service
    from dispatch.settings import load_settings
    from dispatch.store.engine import make_engine
    from dispatch.store.reference import upsert_reference_data

    key = secrets.token_urlsafe(16)
    settings = load_settings(database_url=f"sqlite:///{output / 'dispatch.db'}",
                             api_keys=key, retry_delays="1,2,4",
                             responses_sweep_seconds=2,  # the demo's 3 s deadline, in time
                             **world.settings_overrides())
    say(f"  SMTP {world.smtp.host}:{world.smtp.port}, SFTP ({world.sftp.kind}) "
        f"{world.sftp.host}:{world.sftp.port}, B2B {world.b2b.url}")
    counts = upsert_reference_data(make_engine(settings.database_url), world.reference_data(),
                                   source="templates/sample-refdata.yaml",
                                   templates_dir=settings.templates_dir,
                                   check_template=check_template)
    say("- loaded sample reference data: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    counts = upsert_reference_data(make_engine(settings.database_url),
                                   with_responses(world.reference_data_dict(STANDARDS_FILE),
                                                  "sample-standards (stand-in vendors)"),
                                   source="templates/sample-standards.yaml",
                                   templates_dir=settings.templates_dir,
                                   check_template=check_template, check_xml_template=check_xml)
    say("- loaded vendor formats (sample-standards.yaml): "
        + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    say("- order responses: " + "; ".join(f"{v} must answer within {b['within']}"
                                           for v, b in RESPONSES.items())
        + " (DELTA's stand-in answers, EMBER's never does)")
    app = build_service(settings, dispatch=True)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{bound}"
    say(f"- service running at {base} (embedded dispatch); starting Prefect in-process...")
    embedded = app.state.embedded
    embedded.ready.wait(120)
    if embedded.error is not None:
        raise RuntimeError(f"the embedded dispatcher failed to start: {embedded.error}")
    try:
        ok = _scenario(Client(base, key), world, output)
        if keep_serving:
            say(f"\nAPI still running at {base} (API key {key}); Ctrl-C to stop.")
            try:
                thread.join()
            except KeyboardInterrupt:
                pass
    finally:
        server.should_exit = True
        thread.join(30)
    say(f"\nPrefect UI: the demo's flow runs and artifacts are stored in {output / 'prefect'}."
        f"\n  PREFECT_HOME={output / 'prefect'} .venv/bin/prefect server start"
        "\n  then open http://127.0.0.1:4200/runs")
    return 0 if ok else 1


def _scenario(client: Client, world: Any, output: Path) -> bool:
    ids: list[str] = []
    for index, (label, body) in enumerate(ORDERS):
        if index == 2:
            _wait_delivered(client, ids)  # so the fault below hits this order's submission
            world.b2b.fail_next(503)  # the first submission of this order fails, once
        result = client.post("Create", body)
        order_id = result["PurchaseOrder"]["Id"]
        ids.append(order_id)
        say(f"- created {order_id}: {label}")
    client.post("UpdateOrder", {"OrderId": ids[3], "Status": "Active"})
    say(f"- activated {ids[3]}")
    _wait_delivered(client, [ids[3]])
    client.post("UpdateQuantity", {"OrderId": ids[3], "PurchaseOrderItems": [
        {"ItemId": "NUT-M8", "TotalQuantity": 120}]})
    say(f"- raised {ids[3]} NUT-M8 100 -> 120 (vendor BOLT wants changes: change dispatch)")
    _wait_delivered(client, [ids[4]])
    client.post("UpdateOrder", {"OrderId": ids[4], "Status": "Cancelled"})
    say(f"- cancelled {ids[4]} after it was sent")
    _wait_delivered(client, [ids[5]])
    client.post("UpdateQuantity", {"OrderId": ids[5], "PurchaseOrderItems": [
        {"ItemId": "CABLE-10", "TotalQuantity": 25}]})
    say(f"- raised {ids[5]} CABLE-10 20 -> 25 (vendor DELTA wants changes: Peppol OrderChange)")
    expected = {ids[0]: 1, ids[1]: 1, ids[2]: 1, ids[3]: 2, ids[4]: 2, ids[5]: 2, ids[6]: 1}
    details = _wait_delivered(client, ids, expected=expected)
    _responses(client, world, ids)
    details = {order_id: client.order(order_id) for order_id in ids}
    rows = []
    for order_id in ids:
        for d in details[order_id]["Deliveries"]:
            rows.append({"order": order_id, "dispatch": f"{d['Kind']} #{d['DispatchNumber']}",
                         "channel": d["Channel"],
                         "document": d["DocumentName"] or f"line {d['PurchaseOrderItemId']}",
                         "status": d["Status"], "attempts": d["Attempts"],
                         "evidence": _evidence(d), "sha256": (d["Sha256"] or "")[:12]})
    say("\nWhat was delivered where:")
    say(format_table(rows, ["order", "dispatch", "channel", "document", "status", "attempts",
                            "sha256", "evidence"]))
    folder = _save_received(world, output)
    bad = [r for r in rows if r["status"] not in ("Delivered", "Unsupported")]
    say(f"\nDocuments as the vendors received them: {folder}")
    vendors = {order_id: body["VendorId"] for order_id, (_, body) in zip(ids, ORDERS,
                                                                         strict=True)}
    say("XML format each vendor got (read from the received files):")
    for line in received_formats(folder, vendors):
        say(f"  {line}")
    say(f"Deliveries: {len(rows)}; delivered {sum(r['status'] == 'Delivered' for r in rows)}, "
        f"unsupported (B2B has no cancellation) "
        f"{sum(r['status'] == 'Unsupported' for r in rows)}, problems {len(bad)}")
    return not bad


def _responses(client: Client, world: Any, ids: list[str]) -> None:
    """SPEC 8: DELTA's answer (posted by its stand-in), then EMBER's overdue reminder."""
    from dispatch.demo.answers import response_lines, vendor_answers, wait_overdue

    say("\nOrder responses:")
    vendor_answers(str(client.http.base_url), world.inbox(), ids[5], say)
    for line in response_lines(client.order(ids[5])):
        say(f"  {line}")
    detail = wait_overdue(client.order, ids[6])
    say(f"- EMBER never answered {ids[6]} (due by {detail['Response']['DueBy']}): "
        f"Response {detail['Response']['Status']}; reminder sent:")
    for d in detail["Deliveries"]:
        if d["Kind"] == "reminder":
            say(f"  reminder #{d['DispatchNumber']} {d['Channel']} {d['DocumentName']} "
                f"{d['Status']}: {_evidence(d)}")


def _evidence(d: dict[str, Any]) -> str:
    remote = (d.get("Evidence") or {}).get("remote") or {}
    if d["Status"] == "Unsupported" or d["Status"] == "Failed":
        return (d["Error"] or "")[:70]
    if "message_id" in remote:
        return f"SMTP {remote.get('reply', '')[:24]} {remote['message_id']}"
    if "path" in remote:
        return f"{remote['path'].rsplit('/', 1)[-1]} {remote.get('size')} bytes read back"
    if "status" in remote:
        return f"HTTP {remote['status']} {str(remote.get('body', ''))[:40]}"
    return ""


def _wait_delivered(client: Client, ids: list[str],
                    expected: dict[str, int] | None = None) -> dict[str, dict[str, Any]]:
    """Poll the order detail until every delivery is settled (Delivered, Unsupported or
    Failed: a delivery waiting for a retry is Pending), printing progress."""
    deadline = time.monotonic() + 120
    last = ""
    while True:
        details = {order_id: client.order(order_id) for order_id in ids}
        rows = [d for detail in details.values() for d in detail["Deliveries"]]
        numbers = {order_id: max([d["DispatchNumber"] for d in detail["Deliveries"]] or [0])
                   for order_id, detail in details.items()}
        settled = [d for d in rows if d["Status"] in ("Delivered", "Unsupported", "Failed")]
        progress = f"  {len(settled)}/{len(rows)} deliveries settled"
        if progress != last:
            say(progress)
            last = progress
        complete = all(numbers[o] >= n for o, n in (expected or {}).items())
        if rows and len(settled) == len(rows) and complete:
            return details
        if time.monotonic() > deadline:
            raise RuntimeError("deliveries did not settle within 120 s: " + progress)
        time.sleep(0.1)  # polling the order detail, as a person watching would


# The root element of each XML format the dispatcher can send, and the name it goes by.
XML_FORMATS = {
    "{urn:dispatch:purchase-order:1}": "canonical",
    "{urn:oasis:names:specification:ubl:schema:xsd:": "peppol",
    "{urn:un:unece:uncefact:data:standard:SCRDMCCBDACIOMessageStructure:100}": "order-x",
    "cXML": "cxml",
}


def received_formats(folder: Path, vendors: dict[str, str]) -> list[str]:
    """Per vendor, the XML format of every XML document it received (the template name,
    or "canonical"), and the Order-X embedded in PDFs: read from the files themselves."""
    from lxml import etree
    from pypdf import PdfReader

    got: dict[str, list[str]] = {}
    def dispatch_order(path: Path) -> tuple[str, int, str]:  # PurchaseOrder6_change_2.xml
        order, _, number = path.stem.rpartition("_")
        return order.split("_")[0], int(number) if number.isdigit() else 0, str(path)

    paths = list(folder.glob("*/*.xml")) + list(folder.glob("*/*.pdf"))
    for path in sorted(paths, key=dispatch_order):
        vendor = vendors.get(path.name.split("_", 1)[0])
        if vendor is None:
            continue
        if path.suffix == ".pdf":
            if "order-x.xml" not in PdfReader(path).attachments:
                continue
            label = "order-x embedded in the PDF"
        else:
            tag = etree.parse(str(path), etree.XMLParser(resolve_entities=False,
                                                         no_network=True)).getroot().tag
            name = next((n for prefix, n in XML_FORMATS.items() if tag.startswith(prefix)),
                        "unknown")
            label = f"{name} ({etree.QName(tag).localname})" if name == "peppol" else name
        got.setdefault(vendor, []).append(f"{path.parent.name}/{path.name}: {label}")
    return [f"{vendor}: {'; '.join(files)}" for vendor, files in sorted(got.items())]


def _save_received(world: Any, output: Path) -> Path:
    folder = output / "received"
    (folder / "email").mkdir(parents=True)
    for n, mail in enumerate(world.smtp.messages, 1):
        (folder / "email" / f"message-{n}.eml").write_bytes(mail.content)
        message = email.message_from_bytes(mail.content)
        for part in message.walk():
            name = part.get_filename()
            if name:
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    (folder / "email" / name).write_bytes(payload)
    sftp = folder / "sftp"
    shutil.copytree(world.inbox(), sftp)
    (folder / "b2b-submissions.json").write_text(json.dumps(
        [{"idempotency_key": s.idempotency_key, "body": s.body}
         for s in world.b2b.submissions], indent=2))
    return folder
