"""The devices' errors carry message keys that exist, and the printer's transport errors are translated once.

Keys are found on the source (every ``…Error("key", …)`` and ``msg("key", …)`` under edge/devices)
and in the tables that hold keys (status bits, reasons, the slide-out's time-outs), so a typo is a
failing test here rather than a key shown as itself on the kiosk.
"""

from __future__ import annotations

import ast
import socket
import termios
from pathlib import Path

import pytest
import serial

from edge import messages
from edge.devices import actuator
from edge.devices.printer import SCHEMES, TRANSPORTS, Target, Tspl, transports
from edge.errors import PrinterError

DEVICES = Path(__file__).resolve().parents[2] / "edge" / "devices"
KEYED = {"ScaleError", "FrameError", "CameraError", "PrinterError", "msg", "Msg"}
TARGET = Target("tcp://10.0.0.9:9100", "tcp", host="10.0.0.9", port=9100)


def keys_in_source() -> set[str]:
    found: set[str] = set()
    for path in DEVICES.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in KEYED
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                found.add(node.args[0].value)
    return found


def test_every_key_the_devices_use_is_in_the_catalogue() -> None:
    used = keys_in_source()
    assert len(used) > 40  # the scan sees the raises
    used |= set(Tspl.STATUS_BITS.values()) | {key for _, key in transports.REASONS}
    used |= set(actuator._TIMED_OUT.values()) | {"scale.zero", "scale.tare"}  # built as f"scale.{what}"
    assert not used - messages.CATALOGUE.keys(), sorted(used - messages.CATALOGUE.keys())


def test_every_printer_scheme_has_a_transport() -> None:
    assert list(SCHEMES) == list(TRANSPORTS)


@pytest.mark.parametrize(("error", "line"), [
    (ConnectionRefusedError(111, "Connection refused"), "连接被拒绝 (cannot connect to printer tcp://10.0.0.9:9100: "
                                                       "connection refused)"),
    (TimeoutError("timed out"), "连接超时 (cannot connect to printer tcp://10.0.0.9:9100: connection timed out)"),
    (socket.gaierror(-2, "Name or service not known"), "未知主机：Name or service not known"),
    (PermissionError(13, "Permission denied"), "无权限：请把用户加入 lp 组"),
    (serial.SerialException("could not open port /dev/ttyUSB0"), "could not open port /dev/ttyUSB0"),
    (termios.error(5, "Input/output error"), "(5, 'Input/output error')"),
    (ValueError("Not a valid baudrate: -1"), "Not a valid baudrate: -1"),
])
def test_transport_errors_become_one_printer_error(error: Exception, line: str) -> None:
    with pytest.raises(PrinterError) as caught, transports.translated(TARGET, "printer.connect_failed"):
        raise error
    assert caught.value.key == "printer.connect_failed" and caught.value.__cause__ is error
    assert str(caught.value).startswith("无法连接打印机 tcp://10.0.0.9:9100：") and line in str(caught.value)


def test_our_own_errors_and_bugs_pass_through_untranslated() -> None:
    hung_up = PrinterError("printer.hung_up", url=TARGET.url)
    with pytest.raises(PrinterError) as caught, transports.translated(TARGET, "printer.connection_lost"):
        raise hung_up
    assert caught.value is hung_up
    with pytest.raises(KeyError), transports.translated(TARGET, "printer.connection_lost"):
        raise KeyError("a bug is not a printer problem")
