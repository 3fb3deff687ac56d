"""The decoding pipeline on the real photos (all six folders of qr-real) and on the synthetic set.

For each set: no wrong payload, nothing reported on an empty frame, and a read rate at least
zxing-cpp alone's, measured here on the same images.  How results are compared (CR LF as LF,
non-ASCII exactly, the one double-QR image) is in ``tests.qrgen.judge``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.devices.scanner import Decoder
from tests import qrgen
from tests.bench.bench_qr import zxing_alone

REAL = qrgen.real_dataset_dir()
FOLDERS = [f"qrcode-{n}" for n in range(1, 7)]


def check(samples: list[qrgen.Sample]) -> tuple[int, int]:
    """(our reads, zxing-cpp's reads); fails on any wrong payload or code on an empty frame."""
    dec = Decoder()
    ours = zx = 0
    for s in samples:
        got = dec(s.gray)
        verdict = qrgen.judge(got, s)
        assert verdict != "wrong", f"{s.key}: expected {s.expected!r}, got {got!r}"
        ours += verdict == "read"
        zx += qrgen.judge(zxing_alone(s.gray), s) == "read"
    return ours, zx


@pytest.mark.skipif(not REAL.is_dir(), reason=f"real QR photos not found at {REAL} (set WASTECART_SHARED)")
@pytest.mark.parametrize("folder", FOLDERS)
def test_real_photos_never_misread_and_read_at_least_as_many_as_zxing(folder: str) -> None:
    samples = qrgen.load([REAL / folder])
    assert samples, f"no images in {REAL / folder}"
    ours, zx = check(samples)
    assert ours >= zx, f"{folder}: we read {ours}, zxing-cpp alone {zx} of {len(samples)}"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> list[qrgen.Sample]:
    out: Path = tmp_path_factory.mktemp("qr-synthetic")
    qrgen.generate(out, n=120, seed=5)
    return qrgen.load([out])


def test_synthetic_set_never_misreads_nor_reads_empty_frames(synthetic: list[qrgen.Sample]) -> None:
    empty = [s for s in synthetic if not s.expected]
    assert len(empty) == 120 // qrgen.EMPTY_EVERY
    ours, zx = check(synthetic)
    assert ours >= zx, f"we read {ours}, zxing-cpp alone {zx} of {len(synthetic) - len(empty)}"
    assert zx >= 0.6 * (len(synthetic) - len(empty))  # the set is hard, not unreadable


def test_the_generator_is_deterministic(tmp_path: Path) -> None:
    a, b = qrgen.generate(tmp_path / "a", n=8, seed=3), qrgen.generate(tmp_path / "b", n=8, seed=3)
    assert a == b
    for f in a:
        assert (tmp_path / "a" / f"{f.name}.png").read_bytes() == (tmp_path / "b" / f"{f.name}.png").read_bytes()
        assert (tmp_path / "a" / f"{f.name}.txt").read_text("utf-8") == f.expected
