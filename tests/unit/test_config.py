"""Config: unknown keys and bad values stop the process with the dotted key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge import pins
from edge.app import preflight
from edge.config import EdgeConfig
from edge.errors import SetupError
from gateway.config import GatewayConfig
from wastecart.config import ConfigError, load

# The least a cart needs: its ids, its folder and a roster (dotted keys, so a test may append any [section]).
GOOD = 'org = "H1"\ncart = "CART-01"\ndata = "/tmp/x"\nroster.version = "t1"\nroster.org_name = "测试医院"\n'
PIN_HASH = pins.hash_pin("2468", iterations=1000)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edge.toml"
    path.write_text(text)
    return path


def test_example_configs_in_deploy_are_valid(tmp_path: Path) -> None:
    deploy = Path(__file__).parents[2] / "deploy"
    cfg = load(EdgeConfig, deploy / "edge.example.toml")
    assert cfg.uplink.window == 100
    roster = cfg.roster
    assert roster.org_name == "杭州市第一人民医院" and roster.version == "2026-03"
    assert roster.people["NUR-0102"].departments == ("D02", "D03")
    assert {r for p in roster.people.values() for r in p.roles} == {"collector", "nurse", "keeper", "supervisor",
                                                                   "transporter"}
    vehicle = roster.vehicles["V01"]
    assert roster.receivers[vehicle.receiver].disposal["SHARPS"] == "高温蒸汽处理后焚烧"
    assert roster.people["DRV-01"].carrier == vehicle.carrier
    assert (cfg.workflow.ward_max_h, cfg.workflow.storage_overdue_h, cfg.workflow.warn_pct,
            cfg.workflow.timezone) == (24.0, 48.0, 80, "Asia/Shanghai")
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
     "uplink.retention_days (2) must cover at least twice workflow.ward_max_h + workflow.storage_overdue_h (72 h)"),
    ('[workflow.pins]\n"N1" = "pbkdf2_sha256$0$00$00"\n', "workflow.pins: Value error, N1: not a PIN hash"),
    ('[kiosk]\nport = 70000\n', "kiosk.port: Input should be less than or equal to 65535"),
])
def test_bad_values_name_the_key(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(EdgeConfig, write(tmp_path, GOOD + extra))
    assert message in str(info.value)


# [roster] and the rules that read it ---------------------------------------------------------------

NURSE = '[roster.people.N1]\nname = "李芳"\nroles = ["nurse"]\n'
DEPT = '[roster.departments.D01]\nname = "心血管内科"\n'
VEHICLE = '[roster.vehicles.V1]\nplate = "浙A·D1"\ncarrier = "C1"\nreceiver = "R1"\n'


@pytest.mark.parametrize(("extra", "message"), [
    (DEPT + NURSE + 'departments = ["D09"]\n', "roster: Value error, people.N1.departments: D09 is not in departments"),
    (NURSE, "roster: Value error, people.N1: a nurse needs the departments she signs for"),
    (DEPT, "roster: Value error, rooms: at least one storage room is needed (a handover's 去向 is the first room)"),
    ('[roster.people.N1]\nname = "李芳"\nroles = ["doctor"]\n',
     "roster.people.N1.roles: Value error, roles must be one or more of collector, nurse, keeper, transporter, "
     "supervisor (got doctor)"),
    ('[roster.people.T1]\nname = "吴"\nroles = ["transporter"]\ncarrier = "C9"\n',
     "roster: Value error, people.T1.carrier: C9 is not in carriers"),
    ('[roster.carriers.C1]\nname = "转运公司"\n' + VEHICLE,
     "roster: Value error, vehicles.V1.receiver: R1 is not in receivers"),
    ('[roster.receivers.R1]\nname = "处置中心"\nlicence = "L1"\ndisposal = { GLASS = "回收" }\n',
     "roster.receivers.R1: Value error, disposal: keys must be categories"),
    ('[roster.departments.d01]\nname = "心血管内科"\n', "roster.departments.d01.[key]: Value error, id 'd01'"),
    ('[roster.rooms.R01]\nnam = "暂存间"\n', "roster.rooms.R01.nam: Extra inputs are not permitted"),
    ('[workflow]\norg_name = "杭州市第一人民医院"\n',
     "workflow.org_name: Value error, moved: set the institution's name as [roster] org_name"),
    ('[workflow]\ntimezone = "Asia/Hangzhou"\n',
     "workflow.timezone: Value error, unknown time zone 'Asia/Hangzhou' (an IANA name such as Asia/Shanghai)"),
    ('[workflow]\nwarn_pct = 0\n', "workflow.warn_pct: Input should be greater than or equal to 1"),
    (f'[workflow.pins]\n"NUR-09" = "{PIN_HASH}"\n',
     "workflow.pins: NUR-09 not in roster.people (a PIN signs as a person the roster knows)"),
])
def test_bad_roster_and_rules_name_the_path(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(EdgeConfig, write(tmp_path, GOOD + extra))
    assert message in str(info.value)


def test_a_cart_without_a_roster_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="roster: Field required"):
        load(EdgeConfig, write(tmp_path, 'org = "H1"\ncart = "CART-01"\ndata = "/tmp/x"\n'))


def test_a_pin_of_a_person_on_the_roster_loads(tmp_path: Path) -> None:
    cfg = load(EdgeConfig, write(tmp_path, GOOD + DEPT + '[roster.rooms.R01]\nname = "暂存间"\n' + NURSE
                                 + 'departments = ["D01"]\n'
                                 f'[workflow]\ntimezone = "Asia/Urumqi"\n[workflow.pins]\n"N1" = "{PIN_HASH}"\n'))
    assert cfg.roster.department_name(cfg.roster.people["N1"].departments[0]) == "心血管内科"
    assert pins.who("2468", cfg.workflow.pins) == "N1" and cfg.workflow.timezone == "Asia/Urumqi"


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
     "printer.medical_mm 60×40 with roster.org_name：标签内容太多"),
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
