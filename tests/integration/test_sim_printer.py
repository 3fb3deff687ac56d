"""The simulated printer over its real wires: TCP sockets on a free port, a real pty, the HTTP
control API and the ``wastecart sim printer`` process.  Jobs are hand-built command bytes (from the
language subset, not the cart's encoders); each PNG must scan with zxing-cpp."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import termios
import tty
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import pytest
import zxingcpp

from sim_devices.printer import SimPrinter
from tests.procs import running

WAIT_S = 10.0  # generous upper bound for one expected event on a loaded CI machine
QUIET_S = 0.5  # how long "no answer" is waited for (an offline printer says nothing)
CJK = "医疗废物"


def tspl_job(payload: str) -> bytes:
    return (b"SIZE 60 mm,40 mm\r\nGAP 2 mm,0 mm\r\nDIRECTION 0\r\nCLS\r\n"
            + f'QRCODE 40,40,Q,6,A,0,"{payload}"\r\n'.encode()
            + b'TEXT 260,40,"TSS24.BF2",0,1,1,"' + CJK.encode("gb18030") + b'"\r\n'
            + b'TEXT 260,80,"3",0,1,1,"BAG 1"\r\nBAR 260,120,180,4\r\n'
            + b"BITMAP 260,140,2,8,0," + b"\x00\xff" * 8 + b"\r\n"
            + b"PRINT 1,1\r\n")


def zpl_job(payload: str) -> bytes:
    return (f"^XA^CI28^PW480^LL320^FO40,40^BQN,2,6^FDQA,{payload}^FS"
            f"^FO260,40^A@N,28,28,E:SIMSUN.TTF^FD{CJK}^FS^FO260,80^A0N,28,20^FDBAG 1^FS"
            "^FO260,120^GB180,4,4^FS^FO260,140^GFA,16,16,2," + "FF00" * 8 + "^FS^XZ").encode("utf-8")


def escpos_job(payload: str) -> bytes:
    def qr(fn: int, args: bytes) -> bytes:
        return b"\x1d(k" + (len(args) + 2).to_bytes(2, "little") + b"1" + bytes([fn]) + args

    return (b"\x1b@\x1ba\x01\x1c&" + CJK.encode("gb18030") + b"\x1c.\nBAG 1\n"
            + qr(0x41, b"2\x00") + qr(0x43, b"\x06") + qr(0x45, b"\x32") + qr(0x50, b"0" + payload.encode())
            + qr(0x51, b"0") + b"\n\x1dv0\x00\x02\x00\x08\x00" + b"\xff\x00" * 8 + b"\x1bd\x03\x1dV\x00")


JOBS = {"tspl": tspl_job, "zpl": zpl_job, "escpos": escpos_job}


@pytest.fixture
def printer(tmp_path: Path) -> Iterator[SimPrinter]:
    with SimPrinter(tmp_path / "jobs", pty=True) as p:
        yield p


def address(p: SimPrinter) -> tuple[str, int]:
    host, port = p.tcp_url.removeprefix("tcp://").rsplit(":", 1)
    return host, int(port)


def send(p: SimPrinter, data: bytes) -> None:
    with socket.create_connection(address(p), timeout=WAIT_S) as s:
        s.sendall(data)


def ask(sock: socket.socket, query: bytes, n: int) -> bytes:
    """Sends a status query and reads ``n`` answer bytes on the same connection."""
    sock.sendall(query)
    answer = b""
    while len(answer) < n:
        chunk = sock.recv(n - len(answer))
        assert chunk, f"connection closed after {answer!r}"
        answer += chunk
    return answer


def scan(png: str) -> list[str]:
    gray = cv2.imread(png, cv2.IMREAD_GRAYSCALE)
    assert gray is not None, png
    return [b.text for b in zxingcpp.read_barcodes(gray) if b.valid]


def open_pty(path: str) -> int:
    """The client side of the pty, raw (as pyserial leaves it)."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd, termios.TCSANOW)
    return fd


def read_fd(fd: int, n: int, timeout: float = WAIT_S) -> bytes:
    answer = b""
    while len(answer) < n:
        readable, _, _ = select.select([fd], [], [], timeout)
        if not readable:
            break
        answer += os.read(fd, n - len(answer))
    return answer


def control(p: SimPrinter, path: str, body: object = None, method: str | None = None) -> Any:
    assert p.control_url is not None
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(p.control_url + path, data=data, method=method)
    with urllib.request.urlopen(req, timeout=WAIT_S) as r:
        raw = r.read()
        return raw if r.headers["Content-Type"] == "image/png" else json.loads(raw)


@pytest.mark.parametrize("language", JOBS)
def test_a_job_over_tcp_is_recorded_rendered_and_scans(printer: SimPrinter, language: str) -> None:
    payload = f"WC1.B.H1.B1.I.{language.upper()}"
    job = JOBS[language](payload)
    send(printer, job)
    [rec] = printer.wait_jobs(1, WAIT_S)
    assert (rec["id"], rec["language"], rec["qr"], rec["bitmaps"], rec["source"]) == (1, language, [payload], 1, "tcp")
    assert rec["texts"] == [CJK, "BAG 1"] and rec["warnings"] == []
    assert rec["bytes"] == len(job) and rec["at"]
    assert rec["size"] == ([576, rec["size"][1]] if language == "escpos" else [480, 320])
    assert scan(rec["png"]) == [payload]
    assert json.loads(Path(rec["png"]).with_suffix(".json").read_text("utf-8")) == rec  # next to its PNG


@pytest.mark.parametrize("language", JOBS)
def test_a_job_over_the_pty_and_its_status_query(printer: SimPrinter, language: str) -> None:
    assert printer.pty_path is not None and printer.pty_path.startswith("/dev/pts/")
    fd = open_pty(printer.pty_path)
    try:
        query, ok = {"tspl": (b"\x1b!?", b"\x00"), "zpl": (b"~HS", b"\x02030,0,0"),
                     "escpos": (b"\x10\x04\x04", b"\x12")}[language]
        os.write(fd, query)
        assert read_fd(fd, len(ok)) == ok
        payload = f"PTY-{language}"
        os.write(fd, JOBS[language](payload))
        [rec] = printer.wait_jobs(1, WAIT_S)
        assert (rec["language"], rec["qr"], rec["source"]) == (language, [payload], "pty")
        assert scan(rec["png"]) == [payload]
    finally:
        os.close(fd)


def test_one_pty_carries_jobs_in_several_languages(printer: SimPrinter) -> None:
    assert printer.pty_path is not None
    fd = open_pty(printer.pty_path)
    try:
        os.write(fd, tspl_job("P-1") + zpl_job("P-2") + escpos_job("P-3") + tspl_job("P-4"))
        jobs = printer.wait_jobs(4, WAIT_S)
    finally:
        os.close(fd)
    assert [(j["language"], j["qr"]) for j in jobs] == [
        ("tspl", ["P-1"]), ("zpl", ["P-2"]), ("escpos", ["P-3"]), ("tspl", ["P-4"])]


def test_on_the_pty_silence_ends_an_escpos_job_without_a_cut(tmp_path: Path) -> None:
    with SimPrinter(tmp_path, pty=True, control_port=None, pty_idle_end_s=0.2) as p:
        assert p.pty_path is not None and p.control_url is None
        fd = open_pty(p.pty_path)
        try:
            os.write(fd, escpos_job("NO-CUT").removesuffix(b"\x1dV\x00"))
            [rec] = p.wait_jobs(1, WAIT_S)
        finally:
            os.close(fd)
    assert rec["qr"] == ["NO-CUT"] and scan(rec["png"]) == ["NO-CUT"]


@pytest.mark.parametrize(("language", "query", "ok", "paper_out"), [
    ("tspl", b"\x1b!?", b"\x00", b"\x04"),
    ("escpos", b"\x10\x04\x04", b"\x12", b"\x72"),
    ("escpos", b"\x10\x04\x01", b"\x16", b"\x1e"),
])
def test_status_is_answered_in_the_middle_of_a_job(printer: SimPrinter, language: str, query: bytes, ok: bytes,
                                                   paper_out: bytes) -> None:
    job = JOBS[language]("MID")
    cut = 40 if language == "tspl" else job.index(b"\x1d(k")  # TSPL: mid-line; ESC/POS: between commands
    with socket.create_connection(address(printer), timeout=WAIT_S) as s:
        s.sendall(job[:cut])
        assert ask(s, query, 1) == ok  # the job is not over: answered at once all the same
        printer.set_state("paper_out")
        assert ask(s, query, 1) == paper_out
        printer.set_state("ok")
        s.sendall(job[cut:])
    assert printer.wait_jobs(1, WAIT_S)[0]["qr"] == ["MID"]


def read_lines(sock: socket.socket, n: int) -> list[bytes]:
    data = b""
    while data.count(b"\r\n") < n:
        chunk = sock.recv(256)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data.split(b"\r\n")[:n]


def test_zpl_host_status(printer: SimPrinter) -> None:
    with socket.create_connection(address(printer), timeout=WAIT_S) as s:
        s.sendall(b"~HS")
        assert read_lines(s, 3) == [b"\x02030,0,0,0245,000,0,0,0,000,0,0,0\x03",
                                    b"\x02000,0,0,0,0,2,6,0,00000000,1,000\x03", b"\x021234,0\x03"]
        printer.set_state("paper_out")
        s.sendall(b"~HS")
        assert read_lines(s, 3)[0].split(b",")[1] == b"1"  # field 2: paper out


def test_paper_out_drops_jobs(printer: SimPrinter) -> None:
    printer.set_state("paper_out")
    with socket.create_connection(address(printer), timeout=WAIT_S) as s:
        # a status query after the job: its answer means the job was handled (and dropped)
        assert ask(s, tspl_job("LOST") + b"\x1b!?", 1) == b"\x04"
    with socket.create_connection(address(printer), timeout=WAIT_S) as s:
        assert ask(s, escpos_job("ALSO-LOST") + b"\x10\x04\x04", 1) == b"\x72"
    printer.set_state("ok")
    send(printer, tspl_job("PRINTED"))
    assert [j["qr"] for j in printer.wait_jobs(1, WAIT_S)] == [["PRINTED"]]
    assert printer.status()["dropped"] == 2


def test_offline_refuses_connections_and_comes_back_on_the_same_port(printer: SimPrinter) -> None:
    host, port = address(printer)
    held = socket.create_connection((host, port), timeout=WAIT_S)
    assert ask(held, b"\x1b!?", 1) == b"\x00"  # served (not just queued in the backlog)
    printer.set_state("offline")
    assert held.recv(1) == b""  # the open connection was cut
    held.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, port), timeout=WAIT_S)
    assert printer.pty_path is not None
    fd = open_pty(printer.pty_path)
    try:
        os.write(fd, b"\x1b!?")
        assert read_fd(fd, 1, QUIET_S) == b""  # switched off: no answer
    finally:
        os.close(fd)
    printer.set_state("ok")
    assert address(printer) == (host, port)
    send(printer, zpl_job("BACK"))
    assert printer.wait_jobs(1, WAIT_S)[0]["qr"] == ["BACK"]


def test_malformed_and_garbage_jobs_do_not_stop_the_printer(printer: SimPrinter) -> None:
    send(printer, b"SIZE 60 mm,40 mm\r\nCLS\r\nFROB 1,2\r\nQRCODE 1,1,Z,6,A,0,\"x\"\r\nPRINT 1,1\r\n")
    send(printer, bytes(range(256)) * 4)
    send(printer, b"^XA^FO10,10^GFA,9,9,2,ABC^FS^XZ")
    send(printer, escpos_job("STILL-OK"))
    jobs = {j["language"]: j for j in printer.wait_jobs(3, WAIT_S)}  # connections end in any order
    assert any("FROB" in w for w in jobs["tspl"]["warnings"]) and any("QRCODE" in w for w in jobs["tspl"]["warnings"])
    assert any("^GF" in w for w in jobs["zpl"]["warnings"])
    assert jobs["escpos"]["qr"] == ["STILL-OK"] and printer.errors == 0
    assert len(printer.jobs()) == 3  # the garbage printed nothing


def test_byte_by_byte_over_tcp(printer: SimPrinter) -> None:
    job = tspl_job("SLOW")
    with socket.create_connection(address(printer), timeout=WAIT_S) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(job)):
            s.send(job[i:i + 1])
    [rec] = printer.wait_jobs(1, WAIT_S)
    assert rec["qr"] == ["SLOW"] and rec["bytes"] == len(job) and scan(rec["png"]) == ["SLOW"]


def test_control_api(printer: SimPrinter) -> None:
    send(printer, zpl_job("API"))
    printer.wait_jobs(1, WAIT_S)
    [rec] = control(printer, "/jobs")
    assert rec["qr"] == ["API"]
    assert control(printer, "/jobs/1.png")[:8] == b"\x89PNG\r\n\x1a\n"
    assert control(printer, "/state", {"state": "paper_out"})["state"] == "paper_out"
    for body in ({"state": "on fire"}, {"nope": 1}):
        with pytest.raises(urllib.error.HTTPError) as e:
            control(printer, "/state", body)
        assert e.value.code == 400
        e.value.close()
    assert printer.state == "paper_out"
    assert control(printer, "/jobs", method="DELETE") == {"deleted": 1}
    assert printer.jobs() == [] and Path(rec["png"]).exists()  # forgotten, the files stay
    with pytest.raises(urllib.error.HTTPError) as e:
        control(printer, "/jobs/1.png")
    assert e.value.code == 404
    e.value.close()


def test_wait_jobs_times_out_clearly(printer: SimPrinter) -> None:
    with pytest.raises(TimeoutError, match="0 of 1"):
        printer.wait_jobs(1, timeout=0.1)


def test_cli_prints_where_it_listens_and_each_job_then_stops_on_sigterm(tmp_path: Path) -> None:
    with running("sim", "printer", "--port", "0", "--pty", "--dir", str(tmp_path)) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        words = line.split()
        assert words[0] == "printer" and words[1].startswith("tcp://127.0.0.1:"), line
        assert words[2:4] == ["pty", words[3]] and words[3].startswith("/dev/pts/")
        assert words[4] == "control" and words[5].startswith("http://127.0.0.1:")
        assert words[6:] == ["jobs", str(tmp_path)]
        host, port = words[1].removeprefix("tcp://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=WAIT_S) as s:
            s.sendall(tspl_job("CLI-1"))
        job_line = proc.stdout.readline()
        assert job_line.startswith("job 1 tspl qr=['CLI-1']") and str(tmp_path / "job-000001.png") in job_line
        assert scan(str(tmp_path / "job-000001.png")) == ["CLI-1"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=WAIT_S) == 0


def test_cli_port_in_use_is_one_clear_line() -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy, running(
            "sim", "printer", "--port", str(busy.getsockname()[1]), stderr=-1) as proc:
        assert proc.wait(timeout=WAIT_S) == 2
        assert proc.stderr is not None
        err = proc.stderr.read()
        proc.stderr.close()
    assert err.count("\n") == 1 and "already in use" in err and "Traceback" not in err
