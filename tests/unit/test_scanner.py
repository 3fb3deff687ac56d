"""The decoding pipeline's policy (``edge.devices.scanner.Decoder``) and the ``Debouncer``, on generated frames."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from edge import codes
from edge.devices.camera import State
from edge.devices.scanner import Debouncer, Decoder, Policy, Scanner, decode
from tests import qrgen

PAYLOAD = codes.encode(codes.Code("B", "H330100001", "B00010203", "I"))


def clean_frame(text: str = PAYLOAD, module_px: int = 4) -> np.ndarray:
    frame = np.full((qrgen.H, qrgen.W), 200, np.uint8)
    sym = qrgen._symbol(text, module_px)
    frame[40:40 + sym.shape[0], 60:60 + sym.shape[1]] = sym
    return frame


def empty_frame(seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (qrgen.H, qrgen.W), dtype=np.uint8)


def test_a_clean_code_is_read_by_zxing_alone_without_any_fallback() -> None:
    dec = Decoder()
    assert dec(clean_frame()) == [PAYLOAD]
    assert (dec.stats.located_unread, dec.stats.retry_reads, dec.stats.pyzbar_runs) == (0, 0, 0)


def test_decode_function_and_bgr_input_still_work() -> None:
    gray = clean_frame()
    assert decode(gray) == [PAYLOAD]
    assert Decoder()(np.dstack([gray, gray, gray])) == [PAYLOAD]


def test_empty_and_zero_size_frames_give_nothing() -> None:
    dec = Decoder(Policy(pyzbar_share=1.0))  # pyzbar on every unread frame: still nothing
    assert dec(empty_frame()) == []
    assert dec(np.full((qrgen.H, qrgen.W), 128, np.uint8)) == []
    assert dec(np.zeros((0, 0), np.uint8)) == []
    assert dec.stats.pyzbar_runs == 2


def test_pyzbar_budget_limits_runs_on_a_long_empty_stretch() -> None:
    dec = Decoder(Policy(pyzbar_share=0.01, pyzbar_scale=0.5))
    frame = np.full((qrgen.H, qrgen.W), 128, np.uint8)
    for _ in range(500):
        assert dec(frame) == []
    # a full bank of 2 runs at the start, then 1 % of the next 499 frames' pixels, a quarter frame per run
    assert dec.stats.pyzbar_runs == 2 + int(499 * 0.01 / 0.25) == 21


def test_no_pyzbar_when_its_share_is_zero() -> None:
    dec = Decoder(Policy(pyzbar_share=0.0))
    for _ in range(10):
        dec(empty_frame())
    assert dec.stats.pyzbar_runs == 0


def test_pyzbar_text_must_be_ascii() -> None:
    """zbar guesses the charset of byte-mode data: UTF-8 Chinese comes back as Shift_JIS mojibake."""
    dec = Decoder()
    gray = clean_frame("医疗废物 感染性", module_px=4)
    assert dec._pyzbar(gray) == []
    assert dec.stats.pyzbar_rejected == 1
    assert dec._pyzbar(clean_frame()) == [PAYLOAD]


def test_zxing_reads_utf8_chinese_exactly() -> None:
    assert Decoder()(clean_frame("医疗废物 感染性", module_px=4)) == ["医疗废物 感染性"]


def test_a_small_located_symbol_is_read_by_the_enlarged_retry() -> None:
    """Synthetic frames where the first pass located but did not read: the retry reads some, never wrongly."""
    samples = [qrgen.frame(i, 5) for i in [*range(12), 56, 116]]  # 56, 116: located but not read at first
    on = Decoder()
    off = Decoder(Policy(retry_located=False, pyzbar_share=0.0))
    for img, text in samples:
        for dec in (on, off):
            got = dec(img)
            assert got in ([], [text]) if text else got == []
    assert on.stats.located_unread > 0
    assert on.stats.retry_reads > 0 and off.stats.retry_reads == 0


@pytest.mark.parametrize(("share", "scale"), [(-0.1, 0.5), (1.5, 0.5), (0.01, 0.0), (0.01, 1.5)])
def test_policy_rejects_bad_values(share: float, scale: float) -> None:
    with pytest.raises(ValueError, match="pyzbar_"):
        Policy(pyzbar_share=share, pyzbar_scale=scale)


def test_debouncer_reports_a_code_once_within_the_window() -> None:
    d = Debouncer(2.0)
    assert d.fresh("A", 0.0)
    assert not d.fresh("A", 1.0)
    assert not d.fresh("A", 2.9)  # each sighting extends the window: a label held up is one scan
    assert d.fresh("A", 5.0)
    assert d.fresh("B", 5.1)
    assert not d.fresh("B", 7.0)


class FramesCamera:
    """A camera that shows the given frames once, then ends (the Camera protocol, no device)."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        self._frames = frames

    def frames(self, stop: threading.Event) -> Iterator[tuple[str, np.ndarray]]:
        for i, f in enumerate(self._frames):
            if stop.is_set():
                return
            yield f"frame-{i}", f

    @property
    def state(self) -> State:
        return State.OK


def test_scanner_thread_decodes_with_the_decoder_and_reports_a_held_code_once() -> None:
    seen: queue.Queue[str] = queue.Queue()
    other = codes.encode(codes.Code("S", "H330100001", "S00000042"))
    frames = [clean_frame()] * 5 + [empty_frame()] + [clean_frame(other)]
    decoder = Decoder()
    scanner = Scanner(FramesCamera(frames), seen.put, repeat_s=60.0, decoder=decoder)
    scanner.start()
    assert seen.get(timeout=10) == PAYLOAD
    assert seen.get(timeout=10) == other
    scanner.stop()
    assert seen.empty()
    assert (scanner.frames, decoder.stats.frames, scanner.errors) == (7, 7, 0)
