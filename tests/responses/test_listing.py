"""``dispatch responses`` (SPEC 8): received documents, filters, unmatched, --json."""

from __future__ import annotations

from tests.dispatching.conftest import Env
from tests.responses.conftest import BOLT_KEY, post
from tests.responses.documents import SC1, cxml, peppol
from tests.responses.test_http_intake import acme_order, bolt_order


def test_responses_listed_and_filtered(answering: Env) -> None:
    order_id, lines = acme_order(answering)
    bolt_id, _ = bolt_order(answering)
    assert post(answering, peppol(SC1, order_id=order_id, line_ids=lines)).status_code == 200
    assert post(answering, cxml("accept", order_id=bolt_id), BOLT_KEY).status_code == 200
    assert post(answering, peppol(SC1, order_id="Nope", line_ids=lines)).status_code == 422

    everything = answering.cli("responses", "--json")
    assert [r["status"] for r in everything] == ["ConditionallyAccepted", "Accepted",
                                                 "Unmatched"]
    mine = answering.cli("responses", "--order", order_id, "--json")
    assert len(mine) == 1 and mine[0]["dispatch"] == 1
    assert mine[0]["line_answers"][0] == {
        "PurchaseOrderItemId": lines[0], "Status": "ConditionallyAccepted",
        "ConfirmedQuantity": 5, "PromisedDate": "2022-02-20"}
    assert [r["vendor"] for r in answering.cli("responses", "--vendor", "BOLT", "--json")] \
        == ["BOLT"]
    unmatched = answering.cli("responses", "--unmatched", "--json")
    assert [(r["order_reference"], r["problem"][:18]) for r in unmatched] == \
        [("Nope", "OrderReference/ID:")]
    assert answering.cli("responses", "--overdue", "--json") == []
