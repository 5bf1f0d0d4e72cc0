"""Bare-lxml floors for the standard XML templates (used by bench/documents.py).

Each function builds, with lxml alone, the same document as the built-in template
(``peppol``, ``cxml``, ``order-x``) for a change dispatch, and serialises it; ``same`` checks
that both say the same thing (canonical XML, insignificant whitespace aside).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from lxml import etree

from dispatch.documents.context import DocumentContext

CBC = "{urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2}"
CAC = "{urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2}"
UBL_NS = {None: "urn:oasis:names:specification:ubl:schema:xsd:OrderChange-2",
          "cac": CAC[1:-1], "cbc": CBC[1:-1]}
RSM = "{urn:un:unece:uncefact:data:SCRDMCCBDACIOMessageStructure:100}"
RAM = "{urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:128}"
UDT = "{urn:un:unece:uncefact:data:standard:UnqualifiedDataType:128}"
CII_NS = {"rsm": RSM[1:-1], "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:128",
          "ram": RAM[1:-1], "udt": UDT[1:-1]}
CENT = Decimal("0.01")


def _el(parent: Any, tag: str, text: Any = None, **attrs: str) -> Any:
    el = etree.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text if isinstance(text, str) else str(text)
    return el


def _amount(value: Decimal | None) -> str:
    return format((value or Decimal(0)).quantize(CENT, ROUND_HALF_UP), "f")


def _total(ctx: DocumentContext) -> str:
    return format(sum((ln.Amount.quantize(CENT, ROUND_HALF_UP) for ln in ctx.lines
                       if ln.Amount is not None), Decimal(0)).quantize(CENT), "f")


def _out(root: Any) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _ubl_party(parent: Any, p: Any) -> None:
    party = _el(parent, CAC + "Party")
    _el(party, CBC + "EndpointID", p.endpoint_id, schemeID=p.endpoint_scheme)
    _el(_el(party, CAC + "PartyName"), CBC + "Name", p.name)
    a = p.postal_address
    if a:
        pa = _el(party, CAC + "PostalAddress")
        for tag, value in (("StreetName", a.street), ("AdditionalStreetName", a.additional_street),
                           ("CityName", a.city), ("PostalZone", a.postal_code),
                           ("CountrySubentity", a.region)):
            if value:
                _el(pa, CBC + tag, value)
        _el(_el(pa, CAC + "Country"), CBC + "IdentificationCode", a.country)
    if p.vat_id:
        ts = _el(party, CAC + "PartyTaxScheme")
        _el(ts, CBC + "CompanyID", p.vat_id)
        _el(_el(ts, CAC + "TaxScheme"), CBC + "ID", "VAT")
    _el(_el(party, CAC + "PartyLegalEntity"), CBC + "RegistrationName", p.legal_name or p.name)
    if p.email:
        _el(_el(party, CAC + "Contact"), CBC + "ElectronicMail", p.email)


def peppol_change(ctx: DocumentContext) -> bytes:
    o, d, cur, s = ctx.order, ctx.dispatch, ctx.currency or "EUR", ctx.ship_to
    root = etree.Element(f"{{{UBL_NS[None]}}}OrderChange", nsmap=UBL_NS)
    _el(root, CBC + "CustomizationID", "urn:fdc:peppol.eu:poacc:trns:order_change:3")
    _el(root, CBC + "ProfileID", "urn:fdc:peppol.eu:poacc:bis:advanced_ordering:3")
    _el(root, CBC + "ID", f"{o.Id}-{d.number}")
    _el(root, CBC + "IssueDate", d.generated_at.date().isoformat())
    _el(root, CBC + "IssueTime", d.generated_at.strftime("%H:%M:%S"))
    _el(root, CBC + "SequenceNumberID", d.number)
    if o.Notes:
        _el(root, CBC + "Note", o.Notes)
    _el(root, CBC + "DocumentCurrencyCode", cur)
    if o.Reference:
        _el(root, CBC + "CustomerReference", o.Reference)
    import datetime as dt

    end = (d.generated_at + dt.timedelta(days=30)).date().isoformat()
    _el(_el(root, CAC + "ValidityPeriod"), CBC + "EndDate", end)
    _el(_el(root, CAC + "OrderReference"), CBC + "ID", o.Id)
    _ubl_party(_el(root, CAC + "BuyerCustomerParty"), ctx.buyer)
    _ubl_party(_el(root, CAC + "SellerSupplierParty"), ctx.vendor)
    delivery = _el(root, CAC + "Delivery")
    if s:
        loc = _el(delivery, CAC + "DeliveryLocation")
        _el(loc, CBC + "ID", s.id)
        addr = _el(loc, CAC + "Address")
        _el(addr, CBC + "StreetName", s.addressLine1)
        if s.addressLine2:
            _el(addr, CBC + "AdditionalStreetName", s.addressLine2)
        _el(addr, CBC + "CityName", s.city)
        _el(addr, CBC + "PostalZone", s.zipCode)
        _el(addr, CBC + "CountrySubentity", s.province)
        _el(_el(addr, CAC + "Country"), CBC + "IdentificationCode", s.countryCode)
        _el(_el(_el(delivery, CAC + "DeliveryParty"), CAC + "PartyName"), CBC + "Name",
            s.locationName)
    if o.ShippingDate:
        _el(_el(delivery, CAC + "Despatch"), CBC + "RequestedDespatchDate",
            o.ShippingDate.date().isoformat())
    total = _el(root, CAC + "AnticipatedMonetaryTotal")
    _el(total, CBC + "LineExtensionAmount", _total(ctx), currencyID=cur)
    _el(total, CBC + "PayableAmount", _total(ctx), currencyID=cur)
    notes = ctx.change_notes
    for line in ctx.lines:
        ol = _el(root, CAC + "OrderLine")
        changed = notes.get(line.Id)
        if line.Note or changed:
            text = (f"Changed: {changed}" + (". " if line.Note else "")) if changed else ""
            _el(ol, CBC + "Note", text + (line.Note or ""))
        li = _el(ol, CAC + "LineItem")
        _el(li, CBC + "ID", line.Id)
        _el(li, CBC + "LineStatusCode", "3" if changed else "4")
        _el(li, CBC + "Quantity", line.NetQuantity, unitCode=line.unit_code or "C62")
        if line.Amount is not None:
            _el(li, CBC + "LineExtensionAmount", _amount(line.Amount), currencyID=cur)
        if line.ExpectedDate:
            _el(_el(_el(li, CAC + "Delivery"), CAC + "RequestedDeliveryPeriod"),
                CBC + "EndDate", line.ExpectedDate.date().isoformat())
        if line.PricePerPiece is not None:
            _el(_el(li, CAC + "Price"), CBC + "PriceAmount", format(line.PricePerPiece, "f"),
                currencyID=cur)
        item = _el(li, CAC + "Item")
        _el(item, CBC + "Name", line.ItemName or line.Code)
        _el(_el(item, CAC + "BuyersItemIdentification"), CBC + "ID", line.Code)
        if line.gtin:
            _el(_el(item, CAC + "StandardItemIdentification"), CBC + "ID", line.gtin,
                schemeID="0160")
    return _out(root)


def _cii_party(parent: Any, p: Any) -> None:
    if p.id:
        _el(parent, RAM + "ID", p.id)
    _el(parent, RAM + "Name", p.legal_name or p.name)
    if p.email:
        _el(_el(_el(parent, RAM + "DefinedTradeContact"), RAM + "EmailURIUniversalCommunication"),
            RAM + "URIID", p.email)
    a = p.postal_address
    if a:
        pa = _el(parent, RAM + "PostalTradeAddress")
        for tag, value in (("PostcodeCode", a.postal_code), ("LineOne", a.street),
                           ("LineTwo", a.additional_street), ("CityName", a.city),
                           ("CountryID", a.country), ("CountrySubDivisionName", a.region)):
            if value:
                _el(pa, RAM + tag, value)
    if p.endpoint_id:
        _el(_el(parent, RAM + "URIUniversalCommunication"), RAM + "URIID", p.endpoint_id,
            schemeID=p.endpoint_scheme)
    if p.vat_id:
        _el(_el(parent, RAM + "SpecifiedTaxRegistration"), RAM + "ID", p.vat_id, schemeID="VA")


def _cii_date(parent: Any, tag: str, value: Any) -> None:
    _el(_el(parent, tag), UDT + "DateTimeString", value.strftime("%Y%m%d"), format="102")


def order_x_change(ctx: DocumentContext) -> bytes:
    o, d, s = ctx.order, ctx.dispatch, ctx.ship_to
    root = etree.Element(RSM + "SCRDMCCBDACIOMessageStructure", nsmap=CII_NS)
    _el(_el(_el(root, RSM + "ExchangedDocumentContext"),
            RAM + "GuidelineSpecifiedDocumentContextParameter"), RAM + "ID",
        "urn:order-x.eu:1p0:comfort")
    doc = _el(root, RSM + "ExchangedDocument")
    _el(doc, RAM + "ID", o.Id)
    _el(doc, RAM + "Name", f"Change of purchase order version {d.number}")
    _el(doc, RAM + "TypeCode", "230")
    _cii_date(doc, RAM + "IssueDateTime", d.generated_at)
    _el(doc, RAM + "PurposeCode", "4")
    note = _el(doc, RAM + "IncludedNote")
    _el(note, RAM + "Content", f"CHANGE: version {d.number} replaces version "
                               f"{d.replaces_number} of purchase order {o.Id}.")
    _el(note, RAM + "SubjectCode", "AAI")
    if o.Notes:
        _el(_el(doc, RAM + "IncludedNote"), RAM + "Content", o.Notes)
    tx = _el(root, RSM + "SupplyChainTradeTransaction")
    notes = ctx.change_notes
    for line in ctx.lines:
        item = _el(tx, RAM + "IncludedSupplyChainTradeLineItem")
        ld = _el(item, RAM + "AssociatedDocumentLineDocument")
        _el(ld, RAM + "LineID", line.Id)
        _el(ld, RAM + "LineStatusCode", "3" if line.Id in notes else "4")
        for text in (f"Changed: {notes[line.Id]}" if line.Id in notes else None, line.Note,
                     "Price to be confirmed." if line.PricePerPiece is None else None):
            if text:
                _el(_el(ld, RAM + "IncludedNote"), RAM + "Content", text)
        product = _el(item, RAM + "SpecifiedTradeProduct")
        if line.gtin:
            _el(product, RAM + "GlobalID", line.gtin, schemeID="0160")
        _el(product, RAM + "BuyerAssignedID", line.Code)
        _el(product, RAM + "Name", line.ItemName or line.Code)
        agreement = _el(item, RAM + "SpecifiedLineTradeAgreement")
        if line.LineReference:
            _el(_el(agreement, RAM + "BuyerOrderReferencedDocument"), RAM + "LineID",
                line.LineReference)
        price = "0" if line.PricePerPiece is None else format(line.PricePerPiece, "f")
        _el(_el(agreement, RAM + "NetPriceProductTradePrice"), RAM + "ChargeAmount", price)
        delivery = _el(item, RAM + "SpecifiedLineTradeDelivery")
        _el(delivery, RAM + "RequestedQuantity", line.NetQuantity,
            unitCode=line.unit_code or "C62")
        if line.ExpectedDate:
            _cii_date(_el(delivery, RAM + "RequestedDeliverySupplyChainEvent"),
                      RAM + "OccurrenceDateTime", line.ExpectedDate)
        _el(_el(_el(item, RAM + "SpecifiedLineTradeSettlement"),
                RAM + "SpecifiedTradeSettlementLineMonetarySummation"),
            RAM + "LineTotalAmount", _amount(line.Amount))
    agreement = _el(tx, RAM + "ApplicableHeaderTradeAgreement")
    if o.Reference:
        _el(agreement, RAM + "BuyerReference", o.Reference)
    _cii_party(_el(agreement, RAM + "SellerTradeParty"), ctx.vendor)
    _cii_party(_el(agreement, RAM + "BuyerTradeParty"), ctx.buyer)
    delivery = _el(tx, RAM + "ApplicableHeaderTradeDelivery")
    if s:
        party = _el(delivery, RAM + "ShipToTradeParty")
        _el(party, RAM + "ID", s.id)
        _el(party, RAM + "Name", s.locationName)
        pa = _el(party, RAM + "PostalTradeAddress")
        for tag, value in (("PostcodeCode", s.zipCode), ("LineOne", s.addressLine1),
                           ("LineTwo", s.addressLine2), ("CityName", s.city),
                           ("CountryID", s.countryCode), ("CountrySubDivisionName", s.province)):
            if value:
                _el(pa, RAM + tag, value)
    if o.ShippingDate:
        _cii_date(_el(delivery, RAM + "RequestedDespatchSupplyChainEvent"),
                  RAM + "OccurrenceDateTime", o.ShippingDate)
    settlement = _el(tx, RAM + "ApplicableHeaderTradeSettlement")
    _el(settlement, RAM + "OrderCurrencyCode", ctx.currency or "EUR")
    summary = _el(settlement, RAM + "SpecifiedTradeSettlementHeaderMonetarySummation")
    _el(summary, RAM + "LineTotalAmount", _total(ctx))
    _el(summary, RAM + "TaxBasisTotalAmount", _total(ctx))
    return _out(root)


def _credential(parent: Any, identity: Any) -> Any:
    credential = _el(parent, "Credential", domain=identity.domain)
    _el(credential, "Identity", identity.identity)
    return credential


def _cxml_postal(parent: Any, *streets: str | None, city: str, region: str | None,
                 code: str | None, country: str, name: str) -> None:
    pa = _el(parent, "PostalAddress")
    for street in streets:
        if street:
            _el(pa, "Street", street)
    _el(pa, "City", city)
    if region:
        _el(pa, "State", region)
    if code:
        _el(pa, "PostalCode", code)
    _el(pa, "Country", name, isoCountryCode=country)


def cxml_change(ctx: DocumentContext) -> bytes:
    o, d, b, s, cur = ctx.order, ctx.dispatch, ctx.buyer, ctx.ship_to, ctx.currency or "EUR"
    assert b.cxml is not None and ctx.vendor.cxml is not None
    stamp = d.generated_at.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    root = etree.Element("cXML", payloadID=f"{o.Id}.{d.number}@{b.cxml.identity}",
                         timestamp=stamp, version="1.2.063")
    root.set("{http://www.w3.org/XML/1998/namespace}lang", "en-US")
    header = _el(root, "Header")
    _credential(_el(header, "From"), b.cxml)
    _credential(_el(header, "To"), ctx.vendor.cxml)
    sender = _el(header, "Sender")
    _credential(sender, b.cxml)
    _el(sender, "UserAgent", "dispatch")
    request = _el(_el(root, "Request", deploymentMode="production"), "OrderRequest")
    head = _el(request, "OrderRequestHeader", orderID=o.Id,
               orderDate=(o.CreatedAt or d.generated_at).strftime("%Y-%m-%dT%H:%M:%S+00:00"),
               type="update", orderType="regular", orderVersion=str(d.number))
    _el(_el(head, "Total"), "Money", _total(ctx), currency=cur)
    lang = {"{http://www.w3.org/XML/1998/namespace}lang": "en"}
    if s:
        address = _el(_el(head, "ShipTo"), "Address", addressID=s.id)
        _el(address, "Name", s.locationName, **lang)
        _cxml_postal(address, s.addressLine1, s.addressLine2, city=s.city, region=s.province,
                     code=s.zipCode, country=s.countryCode or "", name=s.countryTitle)
    address = _el(_el(head, "BillTo"), "Address")
    _el(address, "Name", b.legal_name or b.name, **lang)
    a = b.postal_address
    if a:
        _cxml_postal(address, a.street, a.additional_street, city=a.city or "", region=a.region,
                     code=a.postal_code, country=a.country or "", name=a.country or "")
    if b.email:
        _el(address, "Email", b.email)
    if o.Notes:
        _el(head, "Comments", o.Notes, **lang)
    _el(head, "DocumentReference", payloadID=f"{o.Id}.1@{b.cxml.identity}")
    if o.Reference:
        _el(head, "Extrinsic", o.Reference, name="CustomerReference")
    notes = ctx.change_notes
    for line in ctx.lines:
        attrs = {"quantity": str(line.NetQuantity), "lineNumber": str(line.Position)}
        if line.ExpectedDate:
            attrs["requestedDeliveryDate"] = line.ExpectedDate.strftime("%Y-%m-%dT%H:%M:%S+00:00")
        if line.Id in notes:
            attrs["isItemChanged"] = "yes"
        item = _el(request, "ItemOut", **attrs)
        ids = _el(item, "ItemID")
        _el(ids, "SupplierPartID", line.Code)
        _el(ids, "BuyerPartID", line.Code)
        if line.gtin:
            _el(ids, "IdReference", identifier=line.gtin, domain="GTIN")
        detail = _el(item, "ItemDetail")
        price = "0.00" if line.PricePerPiece is None else format(line.PricePerPiece, "f")
        _el(_el(detail, "UnitPrice"), "Money", price, currency=cur)
        _el(detail, "Description", line.ItemName or line.Code, **lang)
        _el(detail, "UnitOfMeasure", line.unit_code or "C62")
        _el(detail, "Classification", line.Code, domain="BuyerItemId")
        _el(detail, "Extrinsic", line.Id, name="PurchaseOrderItemId")
        if line.LineReference:
            _el(detail, "Extrinsic", line.LineReference, name="LineReference")
        if line.PricePerPiece is None:
            _el(detail, "Extrinsic", "yes", name="PriceToBeConfirmed")
        changed = notes.get(line.Id)
        if line.Note or changed:
            text = (f"Changed: {changed}" + (". " if line.Note else "")) if changed else ""
            _el(item, "Comments", text + (line.Note or ""), **lang)
    doctype = '<!DOCTYPE cXML SYSTEM "http://xml.cxml.org/schemas/cXML/1.2.063/cXML.dtd">'
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True,
                          doctype=doctype)


def same(a: bytes, b: bytes) -> bool:
    """Whether two documents are equal as canonical XML, blank text between elements aside."""
    parser = etree.XMLParser(remove_blank_text=True, load_dtd=False, no_network=True)
    one, two = (etree.fromstring(x, parser) for x in (a, b))
    return etree.tostring(one, method="c14n") == etree.tostring(two, method="c14n")
