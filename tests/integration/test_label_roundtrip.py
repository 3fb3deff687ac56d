"""Label → printer language → simulated printer → its PNG → our scanner gives back the payload.

For every language × Chinese mode, over TCP, and once over the pty (serial); paper out and offline
are reported in one clear line and print nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from edge import codes
from edge.devices.printer import Printer, PrinterSettings
from edge.errors import PrinterError
from edge.labels import HazardousLabel, Label, MedicalLabel
from sim_devices.printer import SimPrinter

BAG = codes.encode(codes.Code("B", "H330100001", "B00010203", "I"))
MEDICAL = MedicalLabel(BAG, org_name="杭州市第一人民医院", department="心血管内科", weight_g=1250,
                       produced_at=datetime(2025, 1, 2, 10, 30), notes="含少量药物性废物")
CHEMICAL = MedicalLabel(codes.encode(codes.Code("B", "H330100001", "B00010204", "C")), org_name="杭州市第一人民医院",
                        department="检验科", weight_g=800, main_components="戊二醛、过氧乙酸",
                        produced_at=datetime(2026, 12, 7, 21, 40, tzinfo=timezone(timedelta(hours=8))))
INDUSTRIAL = HazardousLabel(
    codes.encode(codes.Code("B", "H330100001", "D00000042", "C")), waste_name="废矿物油", hw_class="HW08",
    waste_code="900-249-08", uscc="91350100M000100Y43", produced_on=date(2025, 1, 2), hazards=("T", "I"),
    form="液态", main_components="矿物油", org_name="某某机械制造有限公司", weight_g=12500, seq=7)
MODES = [(lang, cjk) for lang in ("tspl", "zpl", "escpos") for cjk in ("font", "bitmap")]


def at(url: str, language: str = "tspl", cjk: str | None = None) -> Printer:
    return Printer(PrinterSettings.model_validate({"url": url, "language": language, "cjk": cjk}))


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimPrinter]:
    with SimPrinter(tmp_path / "jobs", pty=True) as printer:
        yield printer


def scanned(job: dict[str, Any]) -> list[str]:
    import cv2

    from edge.devices.scanner import Decoder

    gray = cv2.imread(job["png"], cv2.IMREAD_GRAYSCALE)
    assert gray is not None, job
    return Decoder()(gray)


def print_and_scan(sim: SimPrinter, url: str, label: Label, lang: str, cjk: str) -> dict[str, Any]:
    result = at(url, lang, cjk=cjk).print_label(label)
    assert (result.language, result.cjk, result.copies) == (lang, cjk, 1)
    (job,) = sim.wait_jobs(1)
    assert job["language"] == lang
    assert 0 <= result.bytes - job["bytes"] <= 2  # a line break after ^XZ belongs to no job
    assert job["qr"] == [label.code]
    assert job["warnings"] == []  # every command understood, the QR's quiet zone clear
    assert scanned(job) == [label.code]
    return job


@pytest.mark.parametrize(("lang", "cjk"), MODES)
def test_medical_label_round_trips_over_tcp(sim: SimPrinter, lang: str, cjk: str) -> None:
    job = print_and_scan(sim, sim.tcp_url, MEDICAL, lang, cjk)
    texts = " ".join(job["texts"])
    assert MEDICAL.code in texts  # ASCII is always native text
    if cjk == "font":
        assert "感染性废物" in texts and "杭州市第一人民医院" in texts
    else:
        assert "感染性废物" not in texts and job["bitmaps"] >= 8  # every Chinese line went as an image


@pytest.mark.parametrize(("lang", "cjk"), MODES)
def test_chemical_label_with_the_toxic_mark_round_trips_over_tcp(sim: SimPrinter, lang: str, cjk: str) -> None:
    job = print_and_scan(sim, sim.tcp_url, CHEMICAL, lang, cjk)
    texts = " ".join(job["texts"])
    if cjk == "font":
        assert "主要成分：戊二醛、过氧乙酸" in texts and "产生时间：2026-12-07 21:40 +08:00" in texts
    else:
        assert "主要成分" not in texts and job["bitmaps"] == 11  # the mark and 10 lines with Chinese, as images


@pytest.mark.parametrize("lang", ["tspl", "zpl", "escpos"])
def test_hj1276_label_round_trips_over_tcp(sim: SimPrinter, lang: str) -> None:
    job = print_and_scan(sim, sim.tcp_url, INDUSTRIAL, lang, "font")
    texts = " ".join(job["texts"])
    assert "废矿物油" in texts and INDUSTRIAL.digital_id[:18] in texts


def test_label_round_trips_over_the_pty(sim: SimPrinter) -> None:
    assert sim.pty_path
    print_and_scan(sim, f"serial://{sim.pty_path}?baud=115200", MEDICAL, "tspl", "font")


def test_copies_are_separate_jobs(sim: SimPrinter) -> None:
    at(sim.tcp_url, "zpl").print_label(MEDICAL, copies=3)
    jobs = sim.wait_jobs(3)
    assert [j["qr"] for j in jobs] == [[MEDICAL.code]] * 3


@pytest.mark.parametrize("lang", ["tspl", "zpl", "escpos"])
def test_paper_out_is_reported_in_chinese_and_prints_nothing(sim: SimPrinter, lang: str) -> None:
    sim.set_state("paper_out")
    with pytest.raises(PrinterError, match=r"^打印机缺纸 — 打印机 tcp://.* \(paper out — printer tcp://"):
        at(sim.tcp_url, lang).print_label(MEDICAL)
    sim.set_state("ok")
    at(sim.tcp_url, lang).print_label(MEDICAL)  # the next label prints: the first was never sent
    (job,) = sim.wait_jobs(1)
    assert sim.dropped == 0 and job["qr"] == [MEDICAL.code]


def test_offline_printer_is_refused_in_one_line(sim: SimPrinter) -> None:
    url = sim.tcp_url
    sim.set_state("offline")
    with pytest.raises(PrinterError, match=rf"^无法连接打印机 {url}：连接被拒绝 \(cannot connect to printer {url}: "
                                           rf"connection refused\)$"):
        at(url).print_label(MEDICAL)
    assert sim.jobs() == []
