"""Exports in Chromium against a real gateway: the ledger's signed records published over MQTT (real
mosquitto, real ingest, the carts' keys in ``cart_keys_dir``); an operator starts an XLSX export,
watches it finish, downloads it, and its rows and totals equal the store; a viewer cannot start one."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook

from gateway.ledger.export import LEDGER_HEADERS, open_readonly
from gateway.ledger.search import LedgerFilter
from gateway.ledger.summary import summarize
from sim_devices.platform import SimPlatform
from tests.browser.conftest import KioskPage, console_login
from tests.browser.console_fixtures import PASSWORDS, ConsoleRig, csrf_of, login
from tests.export_fixtures import Ledger, make
from wastecart.broker import PrivateBroker

WAIT_MS = 20_000  # ms: an export of a few hundred rows takes well under a second; the poll every second


@pytest.fixture(scope="module")
def platform() -> Iterator[SimPlatform]:
    with SimPlatform(seed=15) as p:
        yield p


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory, broker: PrivateBroker,
           platform: SimPlatform) -> Iterator[tuple[ConsoleRig, Ledger]]:
    tmp = tmp_path_factory.mktemp("exports")
    ledger = make(carts=2, days=3)
    keys = ledger.write_keys(tmp / "keys")
    rig = ConsoleRig(tmp, broker, platform, gateway={"cart_keys_dir": keys})
    try:
        for env in ledger.envelopes:
            rig.pub.publish(env["cart"], env)
        rig.wait(stored=len(ledger.envelopes))
        yield rig, ledger
    finally:
        rig.close()


def log_in(open_kiosk: Callable[..., KioskPage], rig: ConsoleRig, name: str) -> KioskPage:
    return console_login(open_kiosk, rig.url + "exports?department=ICU&from=2026-11-02", name, PASSWORDS[name],
                         page="exports")


def test_an_operator_exports_xlsx_and_it_equals_the_store(open_kiosk: Callable[..., KioskPage],
                                                          stored: tuple[ConsoleRig, Ledger], tmp_path: Path) -> None:
    rig, ledger = stored
    kp = log_in(open_kiosk, rig, "ops")
    # the ledger page's link carries its filter: the form is pre-filled with it
    assert kp.by("export-department").input_value() == "ICU" and kp.by("export-from").input_value() == "2026-11-02"
    kp.by("export-department").fill("")
    kp.by("export-from").fill("")
    kp.by("export-format").select_option("xlsx")
    kp.by("export-start").click()
    kp.page.wait_for_selector('tr[data-testid="export-job"][data-state="done"]', timeout=WAIT_MS)
    kp.shot("exports-done")
    link = kp.by("export-download")
    assert f"({len(ledger.bags)} " in link.inner_text()
    with kp.page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename.startswith("wastecart-ledger-all-")
    assert download.suggested_filename.endswith(".xlsx")
    path = tmp_path / download.suggested_filename
    download.save_as(path)

    db: sqlite3.Connection = open_readonly(rig.data)
    try:
        bags = db.execute("SELECT package_code, weight_g FROM ledger_bags WHERE type = 'handover'").fetchall()
        sums = summarize(db, LedgerFilter(), "day")
        audit = db.execute("SELECT user, detail FROM audit_log WHERE action = 'export.start'").fetchall()
    finally:
        db.close()
    book = load_workbook(path, read_only=True)
    try:
        rows: list[tuple[Any, ...]] = [tuple(r) for r in book["台账"].iter_rows(values_only=True)]
        summary: list[tuple[Any, ...]] = [tuple(r) for r in book["汇总"].iter_rows(values_only=True)]
    finally:
        book.close()
    assert rows[0] == LEDGER_HEADERS
    code, kg = LEDGER_HEADERS.index("包装编码"), LEDGER_HEADERS.index("重量(kg)")
    assert sorted((r[code], round(r[kg] * 1000)) for r in rows[1:]) == sorted(bags)
    assert len(bags) == len(ledger.bags)
    assert [r[3] for r in summary[1:-1]] == [s.bags for s in sums]
    assert summary[-1][0] == "合计" and summary[-1][3] == sum(s.bags for s in sums) == len(ledger.counted())
    assert round(summary[-1][4] * 1000) == sum(s.weight_g for s in sums)
    assert [user for user, _ in audit] == ["ops"] and '"format": "xlsx"' in audit[0][1]


def test_a_viewer_cannot_start_one_but_may_download(open_kiosk: Callable[..., KioskPage],
                                                    stored: tuple[ConsoleRig, Ledger]) -> None:
    rig, ledger = stored
    kp = log_in(open_kiosk, rig, "view")
    assert kp.by("export-viewer").is_visible() and kp.page.locator('[data-testid="export-form"]').count() == 0
    with httpx.Client(base_url=rig.url, timeout=10) as viewer, httpx.Client(base_url=rig.url, timeout=10) as ops:
        assert login(viewer, "view").status_code == 303 and login(ops, "ops").status_code == 303
        token = csrf_of(viewer.get("/exports").text)  # the logout form's: a viewer has a session token too
        assert viewer.post("/exports", data={"csrf": token, "format": "csv"}).status_code == 403
        token = csrf_of(ops.get("/exports").text)
        bad = ops.post("/exports", data={"csrf": token, "format": "csv", "from": "2026-02-30"})
        assert bad.status_code == 400 and "from: &#39;2026-02-30&#39; is not a date" in bad.text
        assert ops.post("/exports", data={"format": "csv"}).status_code == 403  # no CSRF token
        cut = ops.post("/exports", data={"csrf": token, "format": "jsonl", "department": "ER"})
        assert cut.status_code == 400 and "department: a jsonl export takes only from, to and cart" in cut.text
        started = ops.post("/exports", data={"csrf": token, "format": "csv", "department": "ER"})
        assert started.status_code == 303
        job = viewer.get("/api/exports").json()["jobs"][0]
        while job["state"] in ("waiting", "running"):
            time.sleep(0.05)
            job = viewer.get("/api/exports").json()["jobs"][0]
        assert job["state"] == "done" and job["filter"] == {"department": "ER"}
        got = viewer.get(job["download"])
        assert got.status_code == 200 and got.content.startswith(b"\xef\xbb\xbf")
        assert got.headers["content-disposition"] == f'attachment; filename="{job["filename"]}"'
        assert len(got.content.decode("utf-8-sig").splitlines()) == 1 + sum(
            b.department == "ER" for b in ledger.bags)
    with httpx.Client(base_url=rig.url, timeout=10) as anonymous:
        assert anonymous.get(job["download"]).status_code == 303  # to the login page
