"""The console's ledger over HTTP (httpx) against a real gateway whose carts published signed records
over MQTT: search with every filter and its pages, a record's page with its verdict and its voids,
a bag's path, summaries that equal the envelopes summed independently, and clear 400s."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sim_devices.platform import SimPlatform
from tests.browser.console_fixtures import login
from tests.browser.ledger_fixtures import LedgerRig, expected_summary
from tests.integration.test_gateway import WAIT_S
from wastecart.broker import PrivateBroker


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory, broker: PrivateBroker) -> Iterator[LedgerRig]:
    with SimPlatform(seed=15) as platform:
        rig = LedgerRig(tmp_path_factory.mktemp("ledger"), broker, platform)
        try:
            yield rig
        finally:
            rig.close()


@pytest.fixture(scope="module")
def client(ledger: LedgerRig) -> Iterator[httpx.Client]:
    """A viewer: the least role; every ledger page is for any logged-in user."""
    with httpx.Client(base_url=ledger.url, timeout=WAIT_S) as c:
        assert login(c, "view").status_code == 303
        yield c


def names(ledger: LedgerRig, rows: list[dict[str, Any]]) -> list[str]:
    by_id = {e["id"]: n for n, e in {**ledger.recs, "forged": ledger.forged, "nokey": ledger.nokey}.items()}
    return [by_id[r["id"]] for r in rows]


def test_nothing_without_a_login(ledger: LedgerRig) -> None:
    with httpx.Client(base_url=ledger.url, timeout=WAIT_S) as anonymous:
        assert anonymous.get("/api/ledger").status_code == 401
        assert anonymous.get("/api/summaries").status_code == 401
        assert anonymous.get("/ledger").status_code == 303
        assert anonymous.get(f"/records/{ledger.recs['h1']['id']}").status_code == 303


def test_search_by_each_field(ledger: LedgerRig, client: httpx.Client) -> None:
    def found(**query: str) -> list[str]:
        got = client.get("/api/ledger", params=query)
        assert got.status_code == 200, got.text
        return names(ledger, got.json()["rows"])

    assert found(bag="baga01") == ["t1", "s1", "h1"]
    assert found(department="ICU", type="handover") == ["forged", "b3", "h3", "h1", "b1"]
    assert found(cart=ledger.b.cart) == ["b3", "b2", "b1"]
    assert found(collector="C0002", **{"from": "2026-12-02"}) == ["b3", "b2"]
    assert found(confirmer="K0001") == ["s1"]
    assert found(category="CHEMICAL") == ["b2"]
    assert found(type="void") == ["v_bag", "v_whole"]
    assert sorted(found(**{"from": "2026-12-03"})) == ["forged", "nokey"]  # stamped at the same time


def test_pages_follow_one_another(ledger: LedgerRig, client: httpx.Client) -> None:
    every = client.get("/api/ledger", params={"limit": 500}).json()["rows"]
    assert len(every) == len(ledger.recs) + 2
    seen: list[str] = []
    query: dict[str, Any] = {"limit": 4}
    while True:
        page = client.get("/api/ledger", params=query).json()
        seen += [r["id"] for r in page["rows"]]
        if page["next"] is None:
            break
        query["after"] = page["next"]
    assert seen == [r["id"] for r in every]
    html = client.get("/ledger", params={"department": "ICU"})
    assert html.status_code == 200 and html.text.count('data-testid="row-') == 5  # b1 b3 h1 h3 + the forged one
    first = client.get("/ledger", params={"limit": 2, "department": "ICU"})
    assert 'data-testid="next-page"' in first.text
    nxt = first.text.split('data-testid="next-page"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    second = client.get(nxt)
    assert second.status_code == 200 and 'data-testid="first-page"' in second.text
    assert ledger.recs["h3"]["id"] in second.text  # row 3 and 4 of the ICU records (newest first)


@pytest.mark.parametrize(("query", "field"), [
    ({"from": "2026-02-30"}, "from"), ({"to": "12/01/2026"}, "to"), ({"type": "lunch"}, "type"),
    ({"category": "PLASTIC"}, "category"), ({"after": "nonsense"}, "after"), ({"limit": "0"}, "limit"),
])
def test_a_bad_filter_is_a_clear_400(client: httpx.Client, query: dict[str, str], field: str) -> None:
    api = client.get("/api/ledger", params=query)
    assert api.status_code == 400 and api.json()["error"].startswith(f"{field}: ")
    page = client.get("/ledger", params=query)
    assert page.status_code == 400
    assert 'data-testid="ledger-error"' in page.text and f"{field}: " in page.text
    assert "Traceback" not in page.text


def test_a_record_page_says_it_in_words_with_its_verdict(ledger: LedgerRig, client: httpx.Client) -> None:
    h2, void = ledger.recs["h2"], ledger.recs["v_whole"]
    page = client.get(f"/records/{h2['id']}")
    assert page.status_code == 200
    text = page.text
    assert 'data-verdict="valid"' in text and "签名有效" in text
    assert "ER 的 N0002 将 1 袋医疗废物（0.800 kg）交给收集人 C0001" in text
    assert "感染性废物" in text and "N0002 (人脸)" in text
    assert f'href="/records/{void["id"]}"' in text and "科室选错" in text  # the void that points at it
    assert "<details" in text and "&#34;prev_hash&#34;: &#34;" in text  # the raw envelope, escaped
    back = client.get(f"/records/{void['id']}").text
    assert f'href="/records/{h2["id"]}"' in back  # and the void links back
    api = client.get(f"/api/records/{h2['id']}").json()
    assert (api["signature"], api["chain"], api["forward_state"]) == ("valid", "verified", "accepted")
    assert api["accepted_at"] >= api["received_at"] and api["envelope"] == h2
    assert client.get("/records/no-such-record").status_code == 404
    assert client.get("/api/records/no-such-record").status_code == 404


def test_a_record_that_does_not_verify_now_says_so(ledger: LedgerRig, client: httpx.Client) -> None:
    forged = client.get(f"/records/{ledger.forged['id']}")
    assert 'data-verdict="invalid"' in forged.text and "签名无效" in forged.text
    assert client.get(f"/api/records/{ledger.forged['id']}").json()["signature"] == "FORGED"
    nokey = client.get(f"/records/{ledger.nokey['id']}?lang=en")
    assert 'data-verdict="nokey"' in nokey.text and "No public key" in nokey.text
    client.get("/ledger?lang=zh")  # back to Chinese for the other tests of this client


def test_a_bags_path(ledger: LedgerRig, client: httpx.Client) -> None:
    api = client.get("/api/bags/BAGA05").json()
    assert [(s["type"], s["status"]) for s in api["steps"]] == [
        ("handover", "HANDED_OVER"), ("storage_in", "DEVIATION"), ("transfer", "TRANSFERRED")]
    page = client.get("/bags/baga05")
    assert page.status_code == 200 and page.text.count('class="step ') == 3
    assert "入库（重量偏差）" in page.text and "TRUCK1" in page.text and "ROOM1" in page.text
    voided = client.get("/bags/BAGA03").text
    assert "科室选错" in voided and 'data-testid="step-voided-1"' in voided
    missing = client.get("/bags/NOSUCH")
    assert missing.status_code == 404 and "NOSUCH" in missing.text
    assert client.get("/api/bags/NOSUCH").status_code == 404


@pytest.mark.parametrize("by", ["day", "month"])
def test_summaries_equal_the_envelopes(ledger: LedgerRig, client: httpx.Client, by: str) -> None:
    got = client.get("/api/summaries", params={"by": by}).json()
    want = expected_summary([*ledger.recs.values(), ledger.forged, ledger.nokey], by)
    assert {(r["period"], r["department"], r["category"]): [r["bags"], r["weight_g"]] for r in got["rows"]} == want
    assert (got["bags"], got["weight_g"]) == (sum(v[0] for v in want.values()), sum(v[1] for v in want.values()))
    assert sum(p["weight_g"] for p in got["periods"]) == got["weight_g"]
    page = client.get("/summaries", params={"by": by})
    assert page.status_code == 200 and 'id="summary-chart"' in page.text
    assert f'<th class="num" data-col="bags">{got["bags"]}</th>' in page.text


def test_summaries_filter_and_refuse(client: httpx.Client) -> None:
    icu = client.get("/api/summaries", params={"department": "ICU", "from": "2026-12-01", "to": "2026-12-01"}).json()
    assert (icu["bags"], icu["weight_g"]) == (3, 1234 + 2000 + 950)
    bad = client.get("/api/summaries", params={"by": "week"})
    assert bad.status_code == 400 and bad.json()["error"].startswith("by: ")
    page = client.get("/summaries", params={"from": "tomorrow"})
    assert page.status_code == 400 and "from: " in page.text


def test_the_language_links_keep_the_filter(client: httpx.Client) -> None:
    page = client.get("/ledger", params={"department": "ICU", "from": "2026-01-01", "lang": "zh"})
    assert page.status_code == 200
    assert 'href="?department=ICU&amp;from=2026-01-01&amp;lang=en" data-testid="lang-en"' in page.text
