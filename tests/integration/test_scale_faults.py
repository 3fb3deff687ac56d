"""Scale faults over a real pty: unplug/replug through a by-id-style link, line noise, corrupted
frames, joining mid-frame, a wrong baud, a powered-off indicator; every protocol's noisy settle;
zero/tare only on request.  Waits are on queues with timeouts, never sleeps."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.devices.scales import PROTOCOLS, Reading, ScaleReader
from edge.errors import ScaleError
from sim_devices.scales import SIMS, VirtualScale
from sim_devices.scales.script import ScriptError, parse_script, play

WAIT_S = 5.0  # s: generous bound for one frame / state change on a loaded CI machine
RECOVER_S = 2.0  # s: the reader must be reading again this soon after the port returns
COVERED = sorted(set(SIMS) & set(PROTOCOLS))


class Watch:
    """A reader whose readings and state changes arrive, in order, on one queue (with arrival times)."""

    def __init__(self, url: str, **kwargs: object) -> None:
        self.events: queue.Queue[tuple[float, str, str | Reading]] = queue.Queue()
        self.reader = ScaleReader(
            url,
            on_reading=lambda r: self.events.put((time.monotonic(), "reading", r)),
            on_state=lambda s: self.events.put((time.monotonic(), "state", s)),
            **kwargs,  # type: ignore[arg-type]
        )

    def next(self, timeout: float = WAIT_S) -> tuple[float, str, str | Reading]:
        return self.events.get(timeout=timeout)

    def until_state(self, state: str, timeout: float = WAIT_S) -> tuple[float, list[Reading]]:
        """Wait for ``state``; returns when it came and the readings before it."""
        seen: list[Reading] = []
        deadline = time.monotonic() + timeout
        while True:
            at, kind, item = self.next(max(0.0, deadline - time.monotonic()))
            if kind == "state" and item == state:
                return at, seen
            if isinstance(item, Reading):
                seen.append(item)

    def readings(self, n: int, timeout: float = WAIT_S) -> list[Reading]:
        out: list[Reading] = []
        while len(out) < n:
            _, _, item = self.next(timeout)
            if isinstance(item, Reading):
                out.append(item)
        return out

    def until_weight(self, grams: int, timeout: float = WAIT_S) -> tuple[float, list[Reading]]:
        seen: list[Reading] = []
        deadline = time.monotonic() + timeout
        while True:
            at, _, item = self.next(max(0.0, deadline - time.monotonic()))
            if isinstance(item, Reading):
                seen.append(item)
                if item.weight_g == grams:
                    return at, seen


@pytest.fixture
def watch() -> Iterator[list[Watch]]:
    """Readers started in a test are stopped here, even when it fails."""
    started: list[Watch] = []
    yield started
    for w in started:
        w.reader.stop()


def start(watches: list[Watch], url: str, **kwargs: object) -> Watch:
    w = Watch(url, **kwargs)
    watches.append(w)
    w.reader.start()
    return w


def test_unplug_and_replug_through_the_link(tmp_path: Path, watch: list[Watch]) -> None:
    link = str(tmp_path / "usb-FTDI_FT232R_A10K1234-if00-port0")  # as under /dev/serial/by-id/
    with VirtualScale(rate_hz=25, seed=1, link=link) as sim:
        sim.set_load(3000, settle_s=0)
        w = start(watch, link, reconnect_s=0.2)
        w.until_state("connected")
        w.until_weight(3000)
        sim.unplug(1.0)
        w.until_state("disconnected")
        assert w.reader.health()["state"] == "disconnected" and w.reader.last_error
        assert sim.plugged.wait(WAIT_S)
        back = sim.plugged_at
        assert back is not None
        connected_at, _ = w.until_state("connected")
        weight_at, _ = w.until_weight(3000)
        assert connected_at - back < RECOVER_S and weight_at - back < RECOVER_S
        health = w.reader.health()
        assert health["connects"] == 2 and health["crashes"] == 0
        assert sim.plugs == 2  # a new pty behind the same link (the kernel may reuse its number)


def test_noise_and_corrupted_frames_never_give_a_wrong_weight(watch: list[Watch]) -> None:
    with VirtualScale("toledo", rate_hz=50, seed=3) as sim:
        sim.set_load(5000, settle_s=0)
        w = start(watch, sim.path)
        w.until_state("connected")
        sim.garbage_rate, sim.corrupt_rate = 0.3, 0.3
        readings = w.readings(150)
    weights = {r.weight_g for r in readings if r.weight_g is not None}
    assert weights == {5000}
    assert any(r.error for r in readings) and all(r.weight_g is None for r in readings if r.error)
    health = w.reader.health()
    minute = health["per_minute"]
    assert minute["checksum_errors"] > 0 and minute["garbage_bytes"] > 0
    assert minute["frames"] == sum(r.error is None for r in readings)
    assert health["total"]["checksum_errors"] >= minute["checksum_errors"]
    assert sim.frames_corrupted > 0


def test_a_stream_joined_mid_frame_resynchronises(watch: list[Watch]) -> None:
    with VirtualScale("toledo", rate_hz=25, seed=4) as sim:
        sim.set_load(777, settle_s=0)
        w = start(watch, sim.path)
        w.until_state("connected")
        for _ in range(5):
            sim.partial_frame()
            w.readings(1)
        readings = w.readings(10)
    assert {r.weight_g for r in readings} == {777}
    assert w.reader.health()["total"]["garbage_bytes"] > 0


def test_a_wrong_baud_means_no_frames_and_no_weights(watch: list[Watch]) -> None:
    """The indicator sends at 2400; the reader listens at 9600 (the pty carries the reader's speed)."""
    with VirtualScale("toledo", rate_hz=25, seed=5, baud=2400) as sim:
        sim.set_load(1234, settle_s=0)
        w = start(watch, sim.path, no_frames_s=1.0)
        w.until_state("connected")
        _, before = w.until_state("no_frames")
        after = [item for _, _, item in _drain(w, 0.5) if isinstance(item, Reading)]
    assert all(r.weight_g is None for r in before + after)
    assert w.reader.state == "no_frames" or w.reader.state == "disconnected"


def test_a_powered_off_indicator_is_no_frames_until_it_is_back(watch: list[Watch]) -> None:
    with VirtualScale("toledo", rate_hz=25, seed=6) as sim:
        sim.set_load(900, settle_s=0)
        w = start(watch, sim.path, no_frames_s=0.5)
        w.until_weight(900)
        sim.power(False)
        w.until_state("no_frames")
        assert w.reader.health()["state"] == "no_frames"
        sim.power(True)
        w.until_state("connected")
        w.until_weight(900)


def _drain(w: Watch, seconds: float) -> list[tuple[float, str, str | Reading]]:
    out = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            out.append(w.next(left))
        except queue.Empty:
            break
    return out


@pytest.mark.parametrize("protocol", COVERED)
def test_a_noisy_settle_ends_on_exactly_the_set_weight(protocol: str, watch: list[Watch]) -> None:
    with VirtualScale(protocol, rate_hz=25, seed=7) as sim:
        w = start(watch, sim.path, protocol=protocol)
        w.until_state("connected")
        w.readings(1)  # streaming (or answering polls)
        sim.set_load(12345, settle_s=0.3, noise_g=20)
        seen: list[Reading] = []
        while not (seen and seen[-1].stable and seen[-1].weight_g != 0):
            seen.extend(w.readings(1))
        tail = w.readings(5)
    assert seen[-1].weight_g == 12345, [r.weight_g for r in seen]
    assert all(r.weight_g == 12345 and r.stable for r in tail)
    assert all(r.error is None for r in seen + tail)


@pytest.mark.parametrize("protocol", COVERED)
def test_zero_and_tare_are_sent_only_on_request(protocol: str, watch: list[Watch]) -> None:
    spec = PROTOCOLS[protocol]
    with VirtualScale(protocol, rate_hz=25, seed=8) as sim:
        w = start(watch, sim.path, protocol=protocol)
        w.until_state("connected")
        w.readings(5)
        for what, command, call in (("zero", spec.zero, w.reader.zero), ("tare", spec.tare, w.reader.tare)):
            if command is None:
                with pytest.raises(ScaleError, match=f"protocol {protocol} has no {what} command"):
                    call()
                continue
            line = command.rstrip(b"\r\n")
            assert line not in sim.commands  # never automatically
            call()
            while line not in sim.commands:
                w.next()  # frames (or poll answers) keep coming; the request goes out between them


SCRIPT = """\
# a bag on a noisy line, the adapter pulled, an overload, then the next bag
load 4000 settle=0
corrupt 0.2
garbage-rate 0.2
wait 0.5
unplug 0.5
wait 1.0
corrupt 0
garbage-rate 0
overload
wait 0.5
overload off
load 4100 settle=0.2 noise=10
"""


def test_a_scripted_session_through_the_link(tmp_path: Path, watch: list[Watch]) -> None:
    link = str(tmp_path / "scale")
    steps = parse_script(SCRIPT)
    with VirtualScale("toledo", rate_hz=25, seed=9, link=link) as sim:
        w = start(watch, link, reconnect_s=0.2)
        w.until_state("connected")
        done = threading.Event()
        player = threading.Thread(target=play, args=(sim, steps, done), daemon=True)
        player.start()
        _, before = w.until_state("disconnected")
        _, during = w.until_state("connected", timeout=WAIT_S)
        seen: list[Reading] = []
        while not (seen and seen[-1].stable and seen[-1].weight_g == 4100):
            seen.extend(w.readings(1))
        done.set()
        player.join(WAIT_S)
    assert {r.weight_g for r in before if r.weight_g is not None} == {4000}
    assert any(r.error for r in before)  # the corrupted frames were refused, not misread
    assert any(r.overload and r.weight_g is None for r in during + seen)
    assert all(r.weight_g is None or 3990 <= r.weight_g <= 4110 for r in during + seen)


def test_script_lines_are_checked_before_anything_plays() -> None:
    with pytest.raises(ScriptError, match="line 2: drift"):
        parse_script("load 5\ndrift fast\n")
    with pytest.raises(ScriptError, match="line 1: corrupt"):
        parse_script("corrupt 1.5")
    with pytest.raises(ScriptError, match="repeat must be the last line"):
        parse_script("repeat\nload 1")
    assert [s.command for s in parse_script("load 1 settle=0.2 noise=3  # x\n\nwait 1\nrepeat\n")] == [
        "load", "wait", "repeat"]
