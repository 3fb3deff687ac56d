"""Every config and key file a person points us at: a file that cannot be read or decoded (here:
Latin-1 text, a folder, a missing file) stops with one line that names the file — never a
traceback from inside a parser."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from edge import files, keys
from edge.errors import EdgeError
from edge.tls import TlsError, TlsSettings
from edge.tls import check as check_tls
from gateway import identity
from gateway.errors import GatewayError
from gateway.ingest.checks import KeyRing
from wastecart import pki
from wastecart.broker import PrivateBroker
from wastecart.errors import WastecartError

LATIN1 = 'org = "Hôpital Saint-Éloi"\n'.encode("latin-1")  # what a Windows editor may save


def test_latin1_text_names_the_file_the_byte_and_the_line(tmp_path: Path) -> None:
    path = tmp_path / "edge.toml"
    path.write_bytes(b"# ok\n" + LATIN1)
    with pytest.raises(files.UnreadableFile) as info:
        files.read_text(path, "config")
    assert str(info.value) == (f"{path}: cannot read the config (not UTF-8 text: byte 0xf4 on line 2; "
                               "save the file as UTF-8)")


@pytest.mark.parametrize("make", ["folder", "missing"])
def test_read_errors_name_the_file(tmp_path: Path, make: str) -> None:
    path = tmp_path / "edge.toml"
    if make == "folder":
        path.mkdir()
    with pytest.raises(files.UnreadableFile, match=f"^{path}: cannot read the config \\(") as info:
        files.read_text(path, "config")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("command", [["edge", "run"], ["gateway", "run"]])
def test_cli_reports_a_latin1_config_in_one_line(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "wastecart.toml"
    path.write_bytes(LATIN1)
    out = subprocess.run([sys.executable, "-m", "wastecart.cli", *command, "--config", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [
        f"wastecart: error: {path}: cannot read the config (not UTF-8 text: byte 0xf4 on line 1; "
        "save the file as UTF-8)"]


def _cart_key(p: Path) -> None:
    (p / keys.KEY_FILE).write_bytes(LATIN1)
    keys.load_or_create(p)


def _gateway_key(p: Path) -> None:
    path = identity.key_path(p)
    path.write_bytes(LATIN1)
    path.chmod(0o600)
    identity.load_or_create(p)


def _cart_public_key(p: Path) -> None:
    (p / "CART-01.pub").write_bytes(LATIN1)
    KeyRing({}, p).get("CART-01")


def _tls_files(p: Path) -> None:
    for name in ("ca.crt", "client.crt", "client.key"):
        (p / name).write_bytes(LATIN1)
    (p / "client.key").chmod(0o600)
    check_tls(TlsSettings(ca=p / "ca.crt", cert=p / "client.crt", key=p / "client.key"))


def _pki_site(p: Path) -> None:
    (p / "site").write_bytes(LATIN1)
    pki.site_of(p)


def _broker_conf(p: Path) -> None:
    (p / "mosquitto.conf").write_bytes(LATIN1)
    PrivateBroker.from_config(p, 1883)


@pytest.mark.parametrize(("load", "name"), [
    (_cart_key, "cart.key"), (_gateway_key, "gateway.key"), (_cart_public_key, "CART-01.pub"),
    (_tls_files, "ca.crt"), (_pki_site, "site"), (_broker_conf, "mosquitto.conf"),
])
def test_every_key_and_config_file_names_itself(tmp_path: Path, load: Callable[[Path], None], name: str) -> None:
    with pytest.raises((EdgeError, GatewayError, TlsError, WastecartError)) as info:
        load(tmp_path)
    text = str(info.value)
    assert str(tmp_path / name) in text
    assert "\n" not in text and "Traceback" not in text
