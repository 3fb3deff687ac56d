"""Nurse PINs: only salted hashes in the config; the right person is found, a wrong PIN is nobody."""

from __future__ import annotations

import hashlib

import pytest

from edge import pins


def test_hash_then_match_finds_the_person() -> None:
    table = {"NUR-01": pins.hash_pin("2468", iterations=1000), "NUR-02": pins.hash_pin("1357", iterations=1000)}
    assert pins.who("1357", table) == "NUR-02"
    assert pins.who("2468", table) == "NUR-01"
    assert pins.who("0000", table) is None
    assert pins.who("", table) is None


def test_same_pin_hashes_differently_each_time() -> None:
    a, b = pins.hash_pin("2468", iterations=1000), pins.hash_pin("2468", iterations=1000)
    assert a != b and "2468" not in a
    assert pins.matches("2468", a) and pins.matches("2468", b)


@pytest.mark.parametrize("pin", ["123", "123456789", "12a4", " 1234"])
def test_bad_pins_are_refused_with_a_reason(pin: str) -> None:
    with pytest.raises(ValueError, match="4-8"):
        pins.hash_pin(pin)


@pytest.mark.parametrize("text", [
    "sha256:abcd",
    "pbkdf2_sha256$0$" + "ab" * 12 + "$" + "0" * 64,          # no rounds: fails at PIN time
    "pbkdf2_sha256$9999999$" + "ab" * 12 + "$" + "0" * 64,    # seconds per nurse on the kiosk
    "pbkdf2_sha256$20000$" + "abc" * 7 + "$" + "0" * 64,      # odd salt digits: fromhex fails at PIN time
])
def test_malformed_hash_is_refused_at_load_and_never_matches(text: str) -> None:
    with pytest.raises(ValueError, match="hash-pin"):
        pins.check_hash_text(text)
    assert not pins.matches("1234", text)


@pytest.mark.parametrize("typed", ["2468", "0000", "", "12a4", "2468\n", "9" * 10_000])
def test_every_text_costs_one_pbkdf2_per_nurse_of_a_pin_sized_input(
        typed: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A malformed or huge text is hashed like a PIN (and matches nobody): the time taken does not
    tell whether it was well-formed, nor which nurse's entry matched."""
    table = {"NUR-01": pins.hash_pin("2468", iterations=1000), "NUR-02": pins.hash_pin("1357", iterations=1000)}
    real = hashlib.pbkdf2_hmac
    hashed: list[tuple[int, int]] = []

    def counted(name: str, password: bytes, salt: bytes, iterations: int) -> bytes:
        hashed.append((len(password), iterations))
        return real(name, password, salt, iterations)

    monkeypatch.setattr(hashlib, "pbkdf2_hmac", counted)
    found = pins.who(typed, table)
    assert found == ("NUR-01" if typed == "2468" else None)
    assert hashed == [(4, 1000), (4, 1000)]
