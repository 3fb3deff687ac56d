"""Config: unknown keys and bad values stop the process with the dotted key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.app import preflight
from edge.config import EdgeConfig
from edge.errors import SetupError
from gateway.config import GatewayConfig
from wastecart.config import ConfigError, load

GOOD = 'org = "H1"\ncart = "CART-01"\ndata = "/tmp/x"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edge.toml"
    path.write_text(text)
    return path


def test_example_configs_in_deploy_are_valid(tmp_path: Path) -> None:
    deploy = Path(__file__).parents[2] / "deploy"
    cfg = load(EdgeConfig, deploy / "edge.example.toml")
    assert cfg.uplink.window == 100
    # the keys folder must exist for the gateway's config to validate: point it at a real one
    gw = load(GatewayConfig, deploy / "gateway.example.toml", {"cart_keys_dir": str(tmp_path)})
    assert gw.platform == "http://127.0.0.1:8080"
    assert gw.forward.backoff_max_s == 300.0


@pytest.mark.parametrize(("extra", "message"), [
    ("[scale]\nbaud = -1\n", "scale.baud: Input should be greater than 0"),
    ("[uplink]\nwindw = 5\n", "uplink.windw: Extra inputs are not permitted"),
    ('broker = "http://x"\n', "broker: Value error, broker URL 'http://x'"),
    ('clock = "gps"\n', "clock: Input should be 'auto', 'ntp', 'rtc' or 'unsynced'"),
    ('[scale]\nprotocol = "mettler"\n', "scale.protocol: Value error, unknown scale protocol 'mettler'; known: ad"),
    ('[actuator]\nkind = "gpio"\nforward_pin = 17\nbackward_pin = 18\nextended_pin = 23\n',
     'actuator: Value error, kind = "gpio" needs retracted_pin'),
    ('[actuator]\nkind = "gpio"\nforward_pin = 17\nbackward_pin = 18\nextended_pin = 23\nretracted_pin = 17\n',
     "actuator: Value error, the four pins must differ"),
    ('[uplink]\nretention_days = 2\n',
     "uplink.retention_days (2) must cover at least twice workflow.storage_overdue_h"),
    ('[workflow.pins]\n"N1" = "pbkdf2_sha256$0$00$00"\n', "workflow.pins: Value error, N1: not a PIN hash"),
    ('[kiosk]\nport = 70000\n', "kiosk.port: Input should be less than or equal to 65535"),
])
def test_bad_values_name_the_key(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(EdgeConfig, write(tmp_path, GOOD + extra))
    assert message in str(info.value)


def test_missing_and_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cart: Field required"):
        load(EdgeConfig, write(tmp_path, 'org = "H1"\ndata = "/tmp/x"\n'))
    with pytest.raises(ConfigError, match="cannot read the config"):
        load(EdgeConfig, tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(EdgeConfig, write(tmp_path, "org = \n"))


def test_flags_override_the_file(tmp_path: Path) -> None:
    cfg = load(EdgeConfig, write(tmp_path, GOOD), {"cart": "CART-09", "scale.port": "/dev/ttyUSB0", "org": None})
    assert cfg.cart == "CART-09"
    assert cfg.org == "H1"
    assert cfg.scale.port == "/dev/ttyUSB0"


# [codes]: our QR codes' key and policy, external formats ------------------------------------------

def test_codes_section(tmp_path: Path) -> None:
    key = tmp_path / "qr.key"
    key.write_text("ab" * 32)
    cfg = load(EdgeConfig, write(tmp_path, GOOD + f'[codes]\nmac_key_file = "{key}"\nrequire_mac = true\n'
                                 '[[codes.external]]\nname = "医院工牌"\npattern = \'^EMP(?P<ident>\\d{6})$\'\n'
                                 'kind = "S"\n[[codes.external]]\nname = "平台"\npattern = \'c=(?P<ident>\\w+)\'\n'
                                 'kind = "B"\ncategory = "S"\n'))
    assert cfg.codes.external[1].category == "SHARPS"
    book = cfg.codes.book(cfg.org)
    assert book.key == bytes.fromhex("ab" * 32) and book.require_mac
    assert book.decode("EMP004211").source == "医院工牌"
    assert book.decode("c=B123").category == "SHARPS"
    assert load(EdgeConfig, write(tmp_path, GOOD)).codes.book("H1").key is None


def test_example_codes_section_is_valid_when_uncommented(tmp_path: Path) -> None:
    example = (Path(__file__).parents[2] / "deploy" / "edge.example.toml").read_text("utf-8")
    block = example[example.index("# [codes]"):]
    text = "\n".join(line.removeprefix("#").removeprefix(" ") for line in block.splitlines())
    key = tmp_path / "qr.key"
    key.write_bytes(bytes(range(32)))
    cfg = load(EdgeConfig, write(tmp_path, GOOD + text), {"codes.mac_key_file": str(key)})
    assert [e.name for e in cfg.codes.external] == ["医院工牌", "平台袋码"]
    assert cfg.codes.book("H1").decode("https://zgm.example.cn/w?c=B0001234567").category == "INFECTIOUS"


@pytest.mark.parametrize(("extra", "message"), [
    ("[codes]\nrequire_mac = true\n", "codes.require_mac: Value error, require_mac = true needs codes.mac_key_file"),
    ('[[codes.external]]\nname = "x"\npattern = "EMP(?P<ident>\\\\d+"\nkind = "S"\n',
     "codes.external[0].pattern: Value error, not a valid regular expression: missing ), unterminated subpattern"),
    ('[[codes.external]]\nname = "x"\npattern = "A(?P<ident>1)"\nkind = "S"\n'
     '[[codes.external]]\nname = "y"\npattern = "EMP(\\\\d+)"\nkind = "S"\n',
     "codes.external[1].pattern: Value error, needs a named group (?P<ident>…)"),
    ('[[codes.external]]\nname = "x"\npattern = "(?P<ident>1)"\nkind = "B"\ncategory = "Q"\n',
     "codes.external[0].category: Value error, unknown category 'Q'"),
    ('[[codes.external]]\nname = "x"\npattern = "(?P<ident>1)"\nkind = "S"\ncategory = "I"\n',
     "codes.external[0]: Value error, a category (the field or a (?P<category>…) group) is only for bag formats"),
    ('[[codes.external]]\nname = "x"\npattern = "(?P<ident>1)"\nkind = "Z"\n',
     "codes.external[0].kind: Input should be 'S', 'D', 'B', 'R' or 'V'"),
    ('[[codes.external]]\nname = "x"\npatern = "(?P<ident>1)"\nkind = "S"\n',
     "codes.external[0].patern: Extra inputs are not permitted"),
    ('[[codes.external]]\nname = "wastecart"\npattern = "(?P<ident>1)"\nkind = "S"\n',
     "codes.external: Value error, format names must be unique and not 'wastecart': wastecart"),
])
def test_bad_codes_values_name_the_key(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(EdgeConfig, write(tmp_path, GOOD + extra))
    assert message in str(info.value)


@pytest.mark.parametrize(("extra", "message"), [
    ('[printer]\nurl = "tcp://127.0.0.1:9100"\nmedical_mm = [60.0, 40.0]\n',
     "printer.medical_mm 60×40 with workflow.org_name：标签内容太多"),
    ('[printer]\nurl = "tcp://127.0.0.1:9100"\nmedical_mm = [30.0, 30.0]\n', "标签太小"),
    ('[codes]\nmac_key_file = "/nonexistent/qr.key"\n',
     "codes.mac_key_file: MAC key file /nonexistent/qr.key: cannot read"),
])
def test_start_up_checks_name_the_setting(tmp_path: Path, extra: str, message: str) -> None:
    """What a value alone cannot tell (a key file, a label that must fit) is checked at start-up by the
    composition root, before anything opens, and names the setting like a config error."""
    cfg = load(EdgeConfig, write(tmp_path, GOOD + extra))  # the values themselves are fine
    with pytest.raises(SetupError) as info:
        preflight(cfg)
    assert message in str(info.value)


def test_short_key_file_names_the_file(tmp_path: Path) -> None:
    key = tmp_path / "qr.key"
    key.write_text("0123456789abcdef\n")  # 8 bytes as hex
    cfg = load(EdgeConfig, write(tmp_path, GOOD + f'[codes]\nmac_key_file = "{key}"\nrequire_mac = true\n'))
    with pytest.raises(SetupError, match=rf"codes.mac_key_file: MAC key file {key}: key too short "
                                         r"\(8 bytes, need at least 16"):
        preflight(cfg)
