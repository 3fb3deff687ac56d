"""Config: unknown keys and bad values stop the process with the dotted key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import EdgeConfig
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
])
def test_bad_values_name_the_key(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(EdgeConfig, write(tmp_path, GOOD + extra))
    assert message in str(info.value)


def test_missing_and_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cart: Field required"):
        load(EdgeConfig, write(tmp_path, 'org = "H1"\ndata = "/tmp/x"\n'))
    with pytest.raises(ConfigError, match="cannot read config"):
        load(EdgeConfig, tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(EdgeConfig, write(tmp_path, "org = \n"))


def test_flags_override_the_file(tmp_path: Path) -> None:
    cfg = load(EdgeConfig, write(tmp_path, GOOD), {"cart": "CART-09", "scale.port": "/dev/ttyUSB0", "org": None})
    assert cfg.cart == "CART-09"
    assert cfg.org == "H1"
    assert cfg.scale.port == "/dev/ttyUSB0"
