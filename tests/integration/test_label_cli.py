"""`wastecart label render` and `wastecart label print` as a user runs them (subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge import codes
from sim_devices.printer import SimPrinter

BAG = codes.encode(codes.Code("B", "H330100001", "B00010203", "I"))
MEDICAL = ["--payload", BAG, "--org-name", "杭州市第一人民医院", "--department", "内科", "--weight-g", "1250",
           "--produced-at", "2025-01-02T10:30+08:00", "--note", "MIXED_DRUGS"]
CHEMICAL_BAG = codes.encode(codes.Code("B", "H330100001", "B00010204", "C"))
CHEMICAL = ["--payload", CHEMICAL_BAG, "--org-name", "杭州市第一人民医院", "--department", "检验科",
            "--weight-g", "800", "--produced-at", "2026-12-07T21:40+08:00", "--main-components", "戊二醛、过氧乙酸"]
INDUSTRIAL = ["--kind", "industrial", "--payload", BAG, "--waste-name", "废矿物油", "--hw-class", "HW08",
              "--waste-code", "900-249-08", "--uscc", "91350100M000100Y43", "--hazards", "T,I", "--seq", "7",
              "--produced-at", "2025-01-02"]


def wastecart(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wastecart.cli", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def scan(path: Path) -> list[str]:
    import cv2

    from edge.devices.scanner import Decoder

    gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert gray is not None
    return Decoder()(gray)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimPrinter]:
    with SimPrinter(tmp_path / "jobs") as printer:
        yield printer


@pytest.mark.parametrize("options", [["--payload", "hello"], MEDICAL, CHEMICAL, INDUSTRIAL],
                         ids=["bare", "medical", "chemical", "hj1276"])
def test_render_png_scans_back(options: list[str], tmp_path: Path) -> None:
    out = tmp_path / "label.png"
    proc = wastecart("label", "render", *options, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{out}: {'industrial' if 'industrial' in options else 'medical'} label, " \
                                  f"800×{800 if 'industrial' in options else 560} dots at 203 dpi"
    assert scan(out) == [options[options.index("--payload") + 1]]


def test_render_builds_a_bag_code_and_writes_printer_bytes(tmp_path: Path) -> None:
    out = tmp_path / "label.prn"
    proc = wastecart("label", "render", "--org", "H1", "--bag", "B7", "--category", "损伤性废物",
                     "--language", "zpl", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    data = out.read_bytes()
    payload = codes.encode(codes.Code("B", "H1", "B7", "S"))
    assert data.startswith(b"^XA") and f"^FDQA,{payload}^FS".encode() in data
    assert f"zpl (cjk=bitmap), {len(data)} bytes" in proc.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--kind", "industrial", "--payload", "X", "--hw-class", "HW08"],
     "--kind industrial needs --waste-name, --waste-code, --uscc (HJ 1276 label fields)"),
    (["--payload", BAG, "--category", "水"], "未知废物类别 '水'"),
    (["--payload", BAG, "--category", "SHARPS"], "与袋码中的类别 感染性废物 不一致"),
    (["--org", "H1"], "give --payload TEXT, or --org, --bag and --category"),
    (["--payload", "X", "--produced-at", "yesterday"], "--produced-at 'yesterday': not an ISO date-time"),
    ([*INDUSTRIAL[:-6], "--uscc", "91350100M000100Y44"], "校验位错误"),
    (["--payload", CHEMICAL_BAG], "--main-components: 化学性废物标签须注明主要成分"),
    (["--org", "H1", "--bag", "B7", "--category", "CHEMICAL", "--main-components", " "],
     "--main-components: 化学性废物标签须注明主要成分"),
    ([*CHEMICAL[:-1], "成" * 41], "--main-components: 主要成分太长（41 个字，最多 40 个）"),
    ([*MEDICAL, "--note", "mixed"], "--note 'mixed': one of MIXED_DRUGS, DOUBLE_BAG, DISINFECTED"),
    ([*MEDICAL, "--note", "MIXED_DRUGS"], "--note MIXED_DRUGS: given twice"),
    (["--payload", BAG, "--category", "INFECTIOUS", "--note", "DOUBLE_BAG", "--note",
      "double_bag"], "--note DOUBLE_BAG: given twice"),
    ([*CHEMICAL, "--note", "DOUBLE_BAG"], "--note DOUBLE_BAG: only for INFECTIOUS, PATHOLOGICAL waste, not CHEMICAL"),
    (["--payload", "hello", "--note", "DISINFECTED"],
     "--note DISINFECTED: only for INFECTIOUS, PATHOLOGICAL waste, not a label without --category"),
    ([*INDUSTRIAL, "--note", "MIXED_DRUGS"], "--note: for medical labels; an HJ 1276 label takes --remarks"),
])
def test_bad_label_options_are_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    proc = wastecart("label", "render", *args, "--out", str(tmp_path / "x.png"))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("wastecart: error: ") and message in proc.stderr
    assert not (tmp_path / "x.png").exists()


def test_notes_and_main_components_are_printed_in_chinese(tmp_path: Path) -> None:
    """ZPL with the printer's font carries the text as UTF-8: the label's lines can be read back."""
    out = tmp_path / "label.zpl"
    proc = wastecart("label", "render", "--org", "H1", "--bag", "B7", "--category", "感染性废物",
                     "--org-name", "杭州市第一人民医院", "--produced-at", "2026-12-07T21:40+08:00",
                     "--note", "MIXED_DRUGS", "--note", "disinfected", "--notes", "科室自述",
                     "--language", "zpl", "--cjk", "font", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    text = out.read_bytes().decode("utf-8")
    assert "备注：含少量药物性废物；已就地消毒；科室自述" in text
    assert "产生时间：2026-12-07 21:40 +08:00" in text and "主要成分" not in text
    out = tmp_path / "chemical.zpl"
    proc = wastecart("label", "render", *CHEMICAL, "--language", "zpl", "--cjk", "font", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    text = out.read_bytes().decode("utf-8")
    assert "主要成分：戊二醛、过氧乙酸" in text and "类别：化学性废物 HW01 841-004-01" in text


def test_help_names_the_catalogue_notes_and_the_components_limit() -> None:
    from edge import catalogue, labels
    from wastecart import cmd_label

    assert tuple(n.id for n in catalogue.LABEL_NOTES) == cmd_label.NOTE_IDS
    assert cmd_label.COMPONENTS_MAX == labels.MAIN_COMPONENTS_MAX


def test_print_to_the_simulated_printer(sim: SimPrinter) -> None:
    proc = wastecart("label", "print", "--printer", sim.tcp_url, "--language", "escpos", *MEDICAL, "--copies", "2",
                     "--json")
    assert proc.returncode == 0, proc.stderr
    line = json.loads(proc.stdout)
    assert (line["url"], line["language"], line["cjk"], line["copies"]) == (sim.tcp_url, "escpos", "font", 2)
    jobs = sim.wait_jobs(2)
    assert [j["qr"] for j in jobs] == [[BAG], [BAG]]
    assert any("杭州市第一人民医院" in t for t in jobs[0]["texts"])


def test_print_takes_the_printer_from_the_config(sim: SimPrinter, tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text(f'org = "H330100001"\ncart = "CART-01"\ndata = "{tmp_path}"\n\n'
                      f'[printer]\nurl = "{sim.tcp_url}"\nlanguage = "zpl"\ncjk = "font"\n\n'
                      '[roster]\nversion = "t1"\norg_name = "杭州市第一人民医院"\n', "utf-8")
    proc = wastecart("label", "print", "--config", str(config), *INDUSTRIAL)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"已发送 1 张标签到 {sim.tcp_url} (sent 1 label(s): zpl, cjk=font,")
    (job,) = sim.wait_jobs(1)
    assert job["language"] == "zpl" and job["qr"] == [BAG] and any("废矿物油" in t for t in job["texts"])


def test_bad_printer_in_the_config_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text(f'org = "H1"\ncart = "C1"\ndata = "{tmp_path}"\n[printer]\nurl = "lpt://1"\n', "utf-8")
    proc = wastecart("label", "print", "--config", str(config), "--payload", "X")
    assert proc.returncode == 2
    assert "printer.url:" in proc.stderr and "scheme must be one of tcp, usblp, serial" in proc.stderr


def test_paper_out_and_refused_are_one_line(sim: SimPrinter) -> None:
    sim.set_state("paper_out")
    proc = wastecart("label", "print", "--printer", sim.tcp_url, "--payload", BAG)
    url = sim.tcp_url
    assert (proc.returncode, proc.stderr) == (
        2, f"wastecart: error: 打印机缺纸 — 打印机 {url} (paper out — printer {url})\n")
    sim.set_state("offline")
    proc = wastecart("label", "print", "--printer", sim.tcp_url, "--payload", BAG)
    assert (proc.returncode, proc.stderr) == (
        2, f"wastecart: error: 无法连接打印机 {url}：连接被拒绝 (cannot connect to printer {url}: "
           "connection refused)\n")
    assert sim.jobs() == []


@pytest.mark.parametrize("command", ["render", "print"])
def test_help(command: str) -> None:
    proc = wastecart("label", command, "--help")
    assert proc.returncode == 0
    words = " ".join(proc.stdout.split())  # argparse wraps the help text
    for option in ("--payload", "--kind", "--category", "--waste-code", "--language", "--note ID",
                   "--main-components", "MIXED_DRUGS, DOUBLE_BAG, DISINFECTED", "required for CHEMICAL"):
        assert option in words
    assert ("--printer" in proc.stdout) == (command == "print")
