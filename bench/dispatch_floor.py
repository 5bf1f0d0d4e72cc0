"""The bare floor of dispatching one standard order (issue 13, item 2): bare libraries only.

Run by ``bench/dispatch.py --only cpu`` as a child process (``_floor_child``), with the same
stand-in vendors as the plain path running in the parent, so the child's CPU is the sender's
alone. Per order, sequentially, in one asyncio loop:

- render the order's PDF with bare reportlab platypus: the same document as
  ``templates/pdf/standard.yaml`` makes of a purchase (title, subtitle, buyer/vendor/ship-to
  block table, the 4x4 details table, "Lines" heading, the 9-column lines table with header,
  zebra rows and totals footer, closing paragraph, page header and footer;
  ``rl_config.useA85 = 0`` and ``invariant=True`` as the product sets them);
- the same workbook as ``templates/excel/standard.xlsx`` with bare openpyxl (same cells,
  fonts, fills, borders, number formats, widths, merges, freeze panes, print setup);
- the same canonical XML with bare lxml (tree + ``tostring``; *not* validated against the
  XSD: the product validates, the cost of one validation is measured after the loop and
  reported apart);
- the two B2B JSON bodies (``json.dumps``);
- one email (the MIME message with the PDF and the workbook attached, built with the
  stdlib ``email`` package as any sender must) sent with ``aiosmtplib`` over one kept
  connection to To + Cc;
- the XML uploaded with ``paramiko`` (the client of the product's SFTP channel) over one
  kept SSH connection: one ``putfo`` to the final name, nothing else (no existence check,
  no temporary name + rename, no size read back);
- the two B2B POSTs with one kept ``httpx.AsyncClient`` (API key and Idempotency-Key
  headers, status checked).

Not done (what the product adds, so what the ratio measures): no database at all (no
claim, no job load, no attempt counting, no evidence recording, no release), no
``Document``/SHA-256/evidence objects, no template engine, no XSD validation, no thread
hops (the floor calls paramiko and renders on the loop's thread), no concurrency, no
logging. The order's data is the standard bench order (vendor ACME, two lines, ship-to
SITE-7, as ``bench/dispatch.py``'s ``order_body`` and the sample reference data make it);
only the order and line ids and the reference change per order.

Imports only the bare libraries (and the standard library): nothing of ``dispatch``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import resource
import time
from decimal import Decimal
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate
from typing import Any

NS = "urn:dispatch:purchase-order:1"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# The standard bench order as the product's context has it (sample reference data).
LINES = (
    {"item": "DRILL-5", "name": "Drill bit 5 mm", "unit": "box", "qty": 10,
     "price": Decimal("12.5000"), "note": "=SUM(A1)", "atelier": 120045},
    {"item": "GLOVE-L", "name": "Safety gloves, size L", "unit": "pair", "qty": 4,
     "price": Decimal("3.8000"), "note": None, "atelier": 120777},
)
VENDOR = {"id": "ACME", "name": "ACME Tools Ltd", "email": "orders@acme.test"}
BUYER = "Dispatch Buyer"
SHIP_TO = {"id": "SITE-7", "locationName": "Plant 7", "addressLine1": "1 Main St",
           "addressLine2": None, "city": "Springfield", "province": "IL",
           "countryTitle": "USA", "zipCode": "62701"}


def order_data(index: int, now: dt.datetime) -> dict[str, Any]:
    lines = []
    for position, line in enumerate(LINES, 1):
        amount = line["price"] * line["qty"]
        lines.append({**line, "id": f"PurchaseOrderItem{2 * index + position}",
                      "position": position, "amount": amount})
    return {"id": f"PurchaseOrder{index + 1}", "reference": f"bench {index}", "created": now,
            "lines": lines, "quantity": sum(ln["qty"] for ln in lines),
            "amount": sum(ln["amount"] for ln in lines)}


# --- PDF: platypus, the purchase layout of templates/pdf/standard.yaml --------------------

_PDF: dict[str, Any] = {}


def _pdf_styles() -> dict[str, Any]:
    if _PDF:
        return _PDF
    from reportlab import rl_config
    from reportlab.lib import colors
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import TableStyle

    rl_config.useA85 = 0  # as dispatch/documents/pdf.py sets it
    body = ParagraphStyle("body", fontName="Helvetica", fontSize=9, leading=11)
    pad3 = [(f"{p}PADDING", (0, 0), (-1, -1), 3) for p in ("LEFT", "RIGHT", "TOP", "BOTTOM")]
    _PDF.update(
        body=body,
        title=ParagraphStyle("t", body, fontName="Helvetica-Bold", fontSize=17, leading=21,
                             spaceAfter=1 * mm),
        sub=ParagraphStyle("s", body, fontSize=9.5, leading=11.4, textColor="#444444",
                           spaceAfter=4 * mm),
        block=ParagraphStyle("k", body, fontSize=8.5, leading=11),
        head=ParagraphStyle("h", body, fontName="Helvetica-Bold", fontSize=10.5, leading=12.6,
                            spaceBefore=5 * mm, spaceAfter=1.5 * mm),
        small=ParagraphStyle("m", body, fontSize=7.5, leading=9.5),
        blocks=[("VALIGN", (0, 0), (-1, -1), "TOP"), ("GRID", (0, 0), (-1, -1), 0.25, "#c8c8c8")]
        + [(f"{p}PADDING", (0, 0), (-1, -1), 2 * mm) for p in ("LEFT", "RIGHT", "TOP", "BOTTOM")],
        details=[("FONT", (0, 0), (-1, -1), "Helvetica", 8.5, 11),
                 ("VALIGN", (0, 0), (-1, -1), "TOP"),
                 ("LINEBELOW", (0, 0), (-1, -1), 0.25, "#dddddd"),
                 ("TEXTCOLOR", (0, 0), (0, -1), "#555555"),
                 ("TEXTCOLOR", (2, 0), (2, -1), "#555555")]
        + [(f"{p}PADDING", (0, 0), (-1, -1), 1.2 * mm) for p in ("LEFT", "RIGHT", "TOP", "BOTTOM")],
        lines=TableStyle([
            ("VALIGN", (0, 0), (-1, -1), "TOP"), *pad3,
            ("FONT", (0, 0), (-1, -1), "Helvetica", 8, 9.6),
            ("GRID", (0, 0), (-1, -1), 0.25, colors.toColor("#c8c8c8")),
            *[("ALIGN", (i, 0), (i, -1), "RIGHT") for i in (0, 4, 5, 6, 7, 8)],
            ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8, 9.6),
            ("BACKGROUND", (0, 0), (-1, 0), colors.toColor("#e4e9f0")),
            ("ROWBACKGROUNDS", (0, 1), (-1, -2), [colors.white, colors.toColor("#f6f7f9")]),
            ("FONT", (0, -1), (-1, -1), "Helvetica-Bold", 8, 9.6),
            ("LINEABOVE", (0, -1), (-1, -1), 0.75, colors.toColor("#333333")),
        ]),
    )
    return _PDF


def _money(value: Any) -> str:
    return "" if value is None else f"{value:,.2f}"


def render_pdf(o: dict[str, Any]) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table

    st = _pdf_styles()
    oid, created = o["id"], o["created"]
    s = SHIP_TO
    story: list[Any] = [
        Paragraph(f"Purchase order {oid}", st["title"]),
        Paragraph(f"Version 1  ·  status Active  ·  issued {created:%Y-%m-%d}", st["sub"]),
        Table([[
            Paragraph(f"<font size=7 color='#666666'>BUYER</font><br/><b>{BUYER}</b>",
                      st["block"]),
            Paragraph(f"<font size=7 color='#666666'>VENDOR</font><br/><b>{VENDOR['name']}</b>"
                      f"<br/>Vendor id: {VENDOR['id']}<br/>{VENDOR['email']}", st["block"]),
            Paragraph(f"<font size=7 color='#666666'>SHIP TO</font><br/><b>{s['locationName']}"
                      f"</b><br/>{s['addressLine1']}<br/>{s['zipCode']} {s['city']}, "
                      f"{s['province']}<br/>{s['countryTitle']}", st["block"]),
        ]], colWidths=[62 * mm, 62 * mm, 58 * mm], style=st["blocks"]),
        Spacer(1, 3 * mm),
        Table([
            ["Order", Paragraph(f"<b>{oid}</b>", st["block"]), "Order date", f"{created:%Y-%m-%d}"],
            ["Reference", o["reference"], "Shipping date", ""],
            ["Stock", "Main", "Device", "DEV-1"],
            ["Consignment", Paragraph("<b>No</b>", st["block"]), "Tracking number", ""],
        ], colWidths=[30 * mm, 61 * mm, 30 * mm, 61 * mm], style=st["details"]),
        Paragraph("Lines", st["head"]),
    ]
    rows: list[list[Any]] = [["#", "Item", "Description", "Unit", "Qty", "Cancelled", "Price",
                              "Amount", "Expected"]]
    for ln in o["lines"]:
        text = ln["name"] + (f"\nNote: {ln['note']}" if ln["note"] else "")
        rows.append([str(ln["position"]), ln["item"], text, ln["unit"], f"{ln['qty']:,}", "",
                     _money(ln["price"]), _money(ln["amount"]), ""])
    rows.append(["", "", f"Total ({len(o['lines'])} lines)", "", f"{o['quantity']:,}", "", "",
                 _money(o["amount"]), ""])
    widths = [9, 25, 49, 13, 15, 16, 17, 19, 19]
    story += [
        Table(rows, colWidths=[w * mm for w in widths], repeatRows=1, style=st["lines"]),
        Spacer(1, 6 * mm),
        Paragraph(f"Please confirm this order quoting {oid} and deliver to the ship-to address "
                  "above. Prices are per unit; amounts are net of cancelled quantities.",
                  st["small"]),
    ]
    header = f"{BUYER}  ·  Purchase order {oid}  ·  version 1"
    footer = f"{oid}_purchase_1  ·  generated {created:%Y-%m-%d %H:%M} UTC"

    def page(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFillColorRGB(0.35, 0.35, 0.35)
        canvas.setFont("Helvetica", 7.5)
        canvas.drawString(14 * mm, A4[1] - 16 * mm, header)
        canvas.drawString(14 * mm, 12 * mm, footer)
        canvas.drawRightString(A4[0] - 14 * mm, 12 * mm, f"Page {canvas.getPageNumber()}")
        canvas.restoreState()

    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, topMargin=20 * mm, bottomMargin=20 * mm,
                            leftMargin=14 * mm, rightMargin=14 * mm, invariant=True,
                            title=f"Purchase order {oid} version 1")
    doc.build(story, onFirstPage=page, onLaterPages=page)
    return buf.getvalue()


# --- Excel: openpyxl, the workbook templates/excel/standard.xlsx makes of a purchase ------

_XL: dict[str, Any] = {}


def _xl_styles() -> dict[str, Any]:
    if _XL:
        return _XL
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side

    ink, muted = "1F2933", "5F6B7A"
    thin = Side(style="thin", color="C8C8C8")
    _XL.update(
        Font=Font, ink=ink, muted=muted,
        grid=Border(left=thin, right=thin, top=thin, bottom=thin),
        top_rule=Border(top=Side(style="medium", color="333333")),
        head_fill=PatternFill("solid", fgColor="E4E9F0"),
        box_fill=PatternFill("solid", fgColor="F6F7F9"),
        label=Font(size=9, color=muted), field=Font(size=10, bold=True, color=ink),
        left=Alignment(horizontal="left"), wrap=Alignment(wrap_text=True, vertical="top"),
        head_font=Font(size=9, bold=True, color=ink), line_font=Font(size=9.5, color=ink),
        total_font=Font(size=10, bold=True, color=ink), right=Alignment(horizontal="right"),
        head_align={a: Alignment(horizontal=a, vertical="center") for a in ("left", "right")},
        line_align={a: Alignment(horizontal=a, vertical="top", wrap_text=a == "left")
                    for a in ("left", "right")},
        columns=[("#", 5, "0", "right"), ("Item", 16, None, "left"),
                 ("Description", 30, None, "left"), ("Unit", 8, None, "left"),
                 ("Quantity", 10, "#,##0", "right"), ("Cancelled", 10, "#,##0", "right"),
                 ("Price", 11, "#,##0.00", "right"), ("Amount", 12, "#,##0.00", "right"),
                 ("Expected", 12, "yyyy-mm-dd", "right"), ("Note", 28, None, "left"),
                 ("Line reference", 16, None, "left"), ("Changed", 30, None, "left")],
    )
    return _XL


def render_xlsx(o: dict[str, Any]) -> bytes:
    from openpyxl import Workbook

    x = _xl_styles()
    Font = x["Font"]
    wb = Workbook()
    wb.properties.title = "Purchase order"
    ws = wb.active
    ws.title = "Order"
    ws.sheet_view.showGridLines = False

    def put(ref: str, value: Any, font: Any, fmt: str | None = None, align: Any = None) -> None:
        cell = ws[ref]
        cell.value = value
        cell.font = font
        if fmt:
            cell.number_format = fmt
        if align is not None:
            cell.alignment = align

    oid, created = o["id"], o["created"]
    put("A1", f"PURCHASE ORDER {oid}", Font(size=16, bold=True, color=x["ink"]))
    put("A2", "", Font(size=12, bold=True, color="B00020"))
    ws.merge_cells("A1:L1")
    ws.merge_cells("A2:L2")
    ws.row_dimensions[1].height, ws.row_dimensions[2].height = 24, 20
    for ref, text in (("A4", "Order"), ("D4", "Version"), ("F4", "Replaces"), ("I4", "Status"),
                      ("A5", "Order date"), ("D5", "Shipping"), ("F5", "Issued"),
                      ("I5", "Consignment"), ("A6", "Reference"), ("D6", "Currency"),
                      ("I6", "Stock / device")):
        put(ref, text, x["label"])
    f, left = x["field"], x["left"]
    put("B4", oid, f, None, left)
    put("E4", 1, f, "0", left)
    put("G4", None, f, "0", left)
    put("J4", "Active", f, None, left)
    put("B5", created, f, "yyyy-mm-dd", left)
    put("E5", None, f, "yyyy-mm-dd", left)
    put("G5", created, f, "yyyy-mm-dd hh:mm", left)
    put("J5", "No", f, None, left)
    put("B6", o["reference"], f, None, left)
    put("E6", "", f, None, left)
    put("J6", "Main / DEV-1", f, None, left)
    s = SHIP_TO
    for col, title, text in (
        ("A", "BUYER", f"{BUYER}\n\n"),
        ("D", "VENDOR", f"{VENDOR['name']}\nVendor id: {VENDOR['id']}\n{VENDOR['email']}"),
        ("I", "SHIP TO", f"{s['locationName']}\n{s['addressLine1']}\n{s['zipCode']} {s['city']}"
                         f", {s['province']}\n{s['countryTitle']}"),
    ):
        put(f"{col}8", title, Font(size=8, bold=True, color=x["muted"]))
        put(f"{col}9", text, Font(size=10, color=x["ink"]), None, x["wrap"])
        ws[f"{col}9"].fill = x["box_fill"]
    for rng in ("A8:C8", "D8:H8", "I8:L8", "A9:C9", "D9:H9", "I9:L9"):
        ws.merge_cells(rng)
    ws.row_dimensions[9].height = 80
    for index, (title, width, _, align) in enumerate(x["columns"], 1):
        ws.column_dimensions[ws.cell(row=11, column=index).column_letter].width = width
        cell = ws.cell(row=11, column=index, value=title)
        cell.font, cell.fill, cell.border, cell.alignment = (
            x["head_font"], x["head_fill"], x["grid"], x["head_align"][align])
    ws.row_dimensions[11].height = 18
    for r, ln in enumerate(o["lines"], 12):
        values = (ln["position"], ln["item"], ln["name"], ln["unit"], ln["qty"], 0,
                  ln["price"], ln["amount"], None, ln["note"], None, None)
        for c, (value, (_, _, fmt, align)) in enumerate(zip(values, x["columns"], strict=True),
                                                        1):
            cell = ws.cell(row=r, column=c, value=value)
            cell.font, cell.border, cell.alignment = (x["line_font"], x["grid"],
                                                      x["line_align"][align])
            if fmt:
                cell.number_format = fmt
            if isinstance(value, str) and value.startswith(("=", "+", "-", "@")):
                cell.data_type = "s"  # order text never becomes a formula
                cell.quotePrefix = True
    total = 12 + len(o["lines"])
    for c, value, fmt in ((3, f"Total ({len(o['lines'])} lines)", None),
                          (5, o["quantity"], "#,##0"), (6, 0, "#,##0"), (7, "", None),
                          (8, o["amount"], "#,##0.00")):
        cell = ws.cell(row=total, column=c, value=value)
        cell.alignment = x["right"]
        if fmt:
            cell.number_format = fmt
    for c in range(1, 13):
        cell = ws.cell(row=total, column=c)
        cell.font, cell.border = x["total_font"], x["top_rule"]
    put(f"A{total + 2}", "Notes", Font(size=9, bold=True, color=x["muted"]))
    put(f"A{total + 3}", "", Font(), None, x["wrap"])
    ws.merge_cells(f"A{total + 3}:H{total + 3}")
    ws.row_dimensions[total + 3].height = 48
    put(f"A{total + 5}", f"{oid}_purchase_1 · generated {created:%Y-%m-%d %H:%M} UTC · please "
        f"confirm quoting {oid}", Font(size=8, italic=True, color=x["muted"]))
    ws.freeze_panes = "A12"
    ws.print_title_rows = "11:11"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.oddFooter.center.text = "Page &P of &N"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# --- XML: lxml, the canonical document -------------------------------------------------

def _iso(value: dt.datetime) -> str:
    return value.isoformat(timespec="seconds") + "Z"


def xml_tree(o: dict[str, Any]) -> Any:
    from lxml import etree

    ns = "{" + NS + "}"
    S = etree.SubElement

    def add(parent: Any, pairs: tuple[tuple[str, Any], ...]) -> None:
        for tag, value in pairs:
            if value is not None:
                S(parent, ns + tag).text = value if isinstance(value, str) else str(value)

    root = etree.Element(ns + "PurchaseOrderDocument", nsmap={None: NS})
    root.set("schemaVersion", "1")
    created = _iso(o["created"])
    add(S(root, ns + "Dispatch"), (("Kind", "purchase"), ("Number", 1), ("GeneratedAt", created)))
    add(S(root, ns + "Order"), (
        ("Id", o["id"]), ("Status", "Active"), ("VendorId", "ACME"), ("StockName", "Main"),
        ("DeviceId", "DEV-1"), ("IsConsignment", "false"), ("Reference", o["reference"]),
        ("CustomShipToId", "SITE-7"), ("CreatedAt", created)))
    add(S(root, ns + "Buyer"), (("Name", BUYER),))
    add(S(root, ns + "Vendor"), (("Id", VENDOR["id"]), ("Name", VENDOR["name"]),
                                 ("Email", VENDOR["email"])))
    s = SHIP_TO
    add(S(root, ns + "ShipTo"), (
        ("Id", s["id"]), ("LocationName", s["locationName"]), ("AddressLine1", s["addressLine1"]),
        ("AddressLine2", s["addressLine2"]), ("City", s["city"]), ("Province", s["province"]),
        ("CountryTitle", s["countryTitle"]), ("ZipCode", s["zipCode"])))
    lines = S(root, ns + "Lines")
    for ln in o["lines"]:
        add(S(lines, ns + "Line"), (
            ("Id", ln["id"]), ("Position", ln["position"]), ("ItemId", ln["item"]),
            ("ItemName", ln["name"]), ("Unit", ln["unit"]), ("TotalQuantity", ln["qty"]),
            ("ReceivedQuantity", 0), ("CancelledQuantity", 0), ("PricePerPiece", ln["price"]),
            ("Amount", ln["amount"]), ("Note", ln["note"])))
    add(S(root, ns + "Totals"), (
        ("LineCount", len(o["lines"])), ("Quantity", o["quantity"]), ("CancelledQuantity", 0),
        ("NetQuantity", o["quantity"]), ("Amount", o["amount"]), ("FullyPriced", "true")))
    return root


def render_xml(o: dict[str, Any]) -> bytes:
    from lxml import etree

    return etree.tostring(xml_tree(o), xml_declaration=True, encoding="UTF-8",
                          pretty_print=True)


# --- B2B bodies and the email message ------------------------------------------------------

def b2b_bodies(o: dict[str, Any], window_days: int = 14) -> list[tuple[str, bytes]]:
    start = o["created"].replace(microsecond=0)
    dates = {"fromDate": f"{start:%Y-%m-%dT%H:%M:%SZ}",
             "toDate": f"{start + dt.timedelta(days=window_days):%Y-%m-%dT%H:%M:%SZ}"}
    location = {k: v for k, v in SHIP_TO.items() if k != "id" and v is not None}
    out = []
    for ln in o["lines"]:
        reference = f"{o['id']}/{ln['id']}"
        body = {"customerReference": reference, "quantity": ln["qty"],
                "atelierCode": ln["atelier"], "deliveryLocation": location,
                "deliveryDates": dates}
        out.append((reference, json.dumps(body, ensure_ascii=False,
                                          separators=(",", ":")).encode()))
    return out


def email_bytes(o: dict[str, Any], smtp: dict[str, Any], pdf: bytes, xlsx: bytes) -> bytes:
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = smtp["sender"]
    message["To"] = ", ".join(smtp["to"])
    message["Cc"] = ", ".join(smtp["cc"])
    message["Subject"] = f"Purchase order {o['id']} (version 1)"
    message["Message-ID"] = f"<floor-{o['id']}@dispatch.localhost>"
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message.set_content(f"Purchase order {o['id']} (version 1).\n\nAttached: the order as PDF "
                        "and Excel.\n")
    message.add_attachment(pdf, maintype="application", subtype="pdf",
                           filename=f"{o['id']}_purchase_1.pdf")
    maintype, _, subtype = XLSX.partition("/")
    message.add_attachment(xlsx, maintype=maintype, subtype=subtype,
                           filename=f"{o['id']}_purchase_1.xlsx")
    return message.as_bytes(policy=SMTP_POLICY)


# --- the child ---------------------------------------------------------------------------

PARTS = ("connect", "pdf", "excel", "xml", "b2b_body", "email_mime", "email_send", "sftp_put",
         "b2b_post")


async def floor_child(config: dict[str, Any], emit: Any) -> None:
    """``config``: n, smtp {host, port, sender, to, cc}, sftp {host, port, username,
    directory, key_file, host_key}, b2b {url, api_key}, xsd (path)."""
    import base64

    import aiosmtplib
    import httpx
    import openpyxl  # noqa: F401  (imported before the timed loop, like the renderers)
    import paramiko
    import reportlab.platypus  # noqa: F401
    from lxml import etree

    n, smtp_cfg, sftp_cfg, b2b_cfg = config["n"], config["smtp"], config["sftp"], config["b2b"]
    _pdf_styles()
    _xl_styles()
    parts = dict.fromkeys(PARTS, 0.0)
    sizes: dict[str, int] = {}
    clock = time.process_time  # the process's CPU (all threads: paramiko's transport too)
    emit(event="timing")
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()

    c = clock()
    smtp = aiosmtplib.SMTP(hostname=smtp_cfg["host"], port=smtp_cfg["port"], start_tls=False,
                           use_tls=False, timeout=30)
    await smtp.connect()
    ssh = paramiko.SSHClient()
    ssh.set_missing_host_key_policy(paramiko.RejectPolicy())
    kind, blob = sftp_cfg["host_key"].split()[:2]
    key = paramiko.PKey.from_type_string(kind, base64.b64decode(blob))
    ssh.get_host_keys().add(f"[{sftp_cfg['host']}]:{sftp_cfg['port']}", key.get_name(), key)
    ssh.connect(sftp_cfg["host"], sftp_cfg["port"], username=sftp_cfg["username"],
                key_filename=sftp_cfg["key_file"], allow_agent=False, look_for_keys=False,
                timeout=30)
    sftp = ssh.open_sftp()
    http = httpx.AsyncClient(timeout=30, trust_env=False, follow_redirects=False)
    submit = b2b_cfg["url"] + "/api/external/purchaseorders/submit"
    auth = f"Bearer {b2b_cfg['api_key']}"
    parts["connect"] += clock() - c

    for i in range(n):
        o = order_data(i, dt.datetime.now(dt.UTC).replace(tzinfo=None))
        c0 = clock()
        pdf = render_pdf(o)
        c1 = clock()
        xlsx = render_xlsx(o)
        c2 = clock()
        xml = render_xml(o)
        c3 = clock()
        bodies = b2b_bodies(o)
        c4 = clock()
        message = email_bytes(o, smtp_cfg, pdf, xlsx)
        c5 = clock()
        await smtp.sendmail(smtp_cfg["sender"], [*smtp_cfg["to"], *smtp_cfg["cc"]], message)
        c6 = clock()
        sftp.putfo(io.BytesIO(xml), f"{sftp_cfg['directory']}/{o['id']}_purchase_1.xml",
                   file_size=len(xml), confirm=False)
        c7 = clock()
        for reference, body in bodies:
            response = await http.post(submit, content=body, headers={
                "Content-Type": "application/json", "Accept": "application/json",
                "Idempotency-Key": f"floor-{reference}", "Authorization": auth})
            response.raise_for_status()
        c8 = clock()
        for part, value in zip(PARTS[1:], (c1 - c0, c2 - c1, c3 - c2, c4 - c3, c5 - c4,
                                           c6 - c5, c7 - c6, c8 - c7), strict=True):
            parts[part] += value
        if i == 0:
            sizes = {"PDF": len(pdf), "Excel": len(xlsx), "XML": len(xml),
                     "email": len(message), "b2b_body": len(bodies[0][1])}

    c = clock()
    await smtp.quit()
    sftp.close()
    ssh.close()
    await http.aclose()
    parts["connect"] += clock() - c
    seconds = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)

    # Not in the floor: what one XSD validation of the XML costs (the product validates).
    schema = etree.XMLSchema(etree.parse(config["xsd"]))
    tree = xml_tree(order_data(0, dt.datetime.now(dt.UTC).replace(tzinfo=None)))
    c = clock()
    for _ in range(200):
        schema.assertValid(tree)
    xsd_ms = (clock() - c) / 200 * 1000
    emit(event="done", seconds=seconds, counts={"orders": n},
         cpu_s=round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 3),
         user_s=round(cpu1.ru_utime - cpu0.ru_utime, 3),
         sys_s=round(cpu1.ru_stime - cpu0.ru_stime, 3),
         vol_ctx=cpu1.ru_nvcsw - cpu0.ru_nvcsw, invol_ctx=cpu1.ru_nivcsw - cpu0.ru_nivcsw,
         parts_ms={k: round(v / n * 1000, 3) for k, v in parts.items()}, sizes=sizes,
         xsd_validate_ms=round(xsd_ms, 3))
