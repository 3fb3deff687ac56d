"""Stream cameras against the simulated MJPEG camera: a real HTTP server on a free port, opened
by OpenCV's FFmpeg backend, decoded by zxing-cpp; stalls, unplugging and distortions."""

from __future__ import annotations

import json
import queue
import signal
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import zxingcpp

from edge.devices.camera import State, StreamCamera, open_camera
from sim_devices.camera import MjpegCamera
from tests.procs import running

WAIT_S = 15.0  # generous upper bound for one expected event on a loaded CI machine


class Viewer:
    """Runs ``camera.frames()`` in a thread; frames and state changes arrive on queues."""

    def __init__(self, url: str, **kw: Any) -> None:
        self.states: queue.Queue[State] = queue.Queue()
        self.frames: queue.Queue[np.ndarray] = queue.Queue(maxsize=4)
        camera = open_camera(url, on_state=self.states.put, **kw)
        assert isinstance(camera, StreamCamera)
        self.camera = camera
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for _name, gray in self.camera.frames(self.stop):
            if self.frames.full():
                self.frames.get_nowait()
            self.frames.put(gray)

    def frame(self) -> np.ndarray:
        return self.frames.get(timeout=WAIT_S)

    def sees(self, *texts: str, within: int = 30) -> bool:
        """Whether one of the next ``within`` frames (3 s at 10 fps) decodes to exactly ``texts``.

        Frames sent before the change may still be in flight (socket buffers, the handover), so
        the first few are allowed to show the old view."""
        return any(decode(self.frame()) == list(texts) for _ in range(within))

    def wait_state(self, *wanted: State) -> State:
        while True:
            state = self.states.get(timeout=WAIT_S)
            if state in wanted:
                return state

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=WAIT_S)
        assert not self.thread.is_alive()


@pytest.fixture
def sim() -> Iterator[MjpegCamera]:
    with MjpegCamera() as cam:
        yield cam


@pytest.fixture
def viewer(sim: MjpegCamera) -> Iterator[Viewer]:
    v = Viewer(sim.url, stall_s=1.0, backoff_first_s=0.2, backoff_max_s=0.5, open_timeout_s=1.0)
    yield v
    v.close()


def decode(gray: np.ndarray) -> list[str]:
    return [b.text for b in zxingcpp.read_barcodes(gray) if b.valid]


def post(sim: MjpegCamera, path: str, body: object) -> dict[str, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    with urllib.request.urlopen(urllib.request.Request(sim.control_url.rstrip("/") + path, data=data),
                                timeout=WAIT_S) as r:
        doc: dict[str, Any] = json.load(r)
    return doc


def test_opencv_opens_the_sim_stream_and_frames_decode(sim: MjpegCamera, viewer: Viewer) -> None:
    post(sim, "/show", {"payload": "WC1|ORG|BAG-000123"})
    assert viewer.sees("WC1|ORG|BAG-000123")
    gray = viewer.frame()
    assert gray.dtype == np.uint8 and gray.shape == (480, 640)
    assert viewer.wait_state(State.OK) == State.OK  # CONNECTING → OK was announced
    assert viewer.camera.health()["state"] == "ok"
    status = json.load(urllib.request.urlopen(sim.control_url + "status", timeout=WAIT_S))
    assert status["showing"] == "WC1|ORG|BAG-000123" and status["clients"] == 1


def test_blank_has_no_code(sim: MjpegCamera, viewer: Viewer) -> None:
    sim.show("SOMETHING")
    assert viewer.sees("SOMETHING")
    post(sim, "/blank", b"")
    assert viewer.sees()


@pytest.mark.parametrize("distort", [
    {"blur": 1.2}, {"tilt": 30}, {"glare": 0.5}, {"noise": 12}, {"contrast": 0.35}, {"scale": 0.8},
    {"blur": 0.8, "tilt": 15, "glare": 0.3, "noise": 6, "contrast": 0.6, "scale": 1.3},
])
def test_moderate_distortions_still_decode(sim: MjpegCamera, viewer: Viewer, distort: dict[str, float]) -> None:
    post(sim, "/show", {"payload": "WC1|ORG|BAG-777", "distort": distort})
    assert viewer.sees("WC1|ORG|BAG-777")


def test_control_api_refuses_bad_requests(sim: MjpegCamera) -> None:
    for path, body in [("/show", {"payload": "x", "distort": {"blurr": 1}}), ("/show", {"payload": "x",
                       "distort": {"glare": 2}}), ("/stall", {"seconds": -1}), ("/script", {"payload": "x"}),
                       ("/show-image", b"not an image"), ("/show", b"{")]:
        with pytest.raises(urllib.error.HTTPError) as e:
            post(sim, path, body)
        assert e.value.code == 400
        e.value.close()


def test_show_image_and_script(sim: MjpegCamera, viewer: Viewer) -> None:
    import cv2

    from sim_devices.camera import render

    ok, png = cv2.imencode(".png", render("FROM-A-PNG"))
    assert ok
    post(sim, "/show-image", bytes(png))
    assert viewer.sees("FROM-A-PNG")
    post(sim, "/script", [{"payload": "STEP-1", "seconds": 0.5}, {"payload": "STEP-2", "seconds": 60,
                                                                    "distort": {"tilt": 10}}])
    seen: list[str] = []
    while "STEP-2" not in seen:
        for text in decode(viewer.frame()):
            if not seen or seen[-1] != text:
                seen.append(text)
    assert seen[-2:] == ["STEP-1", "STEP-2"]


@pytest.mark.slow
def test_a_stall_is_detected_and_the_stream_resumes(sim: MjpegCamera, viewer: Viewer) -> None:
    sim.show("BEFORE")
    assert viewer.sees("BEFORE")
    viewer.wait_state(State.OK)
    post(sim, "/stall", {"seconds": 3})
    assert viewer.wait_state(State.STALLED) == State.STALLED  # stall_s=1: the read gave up
    viewer.wait_state(State.RECONNECTING)
    sim.show("AFTER")
    viewer.wait_state(State.OK)
    assert viewer.sees("AFTER")
    health = viewer.camera.health()
    assert health["stalls"] >= 1 and health["reconnects"] >= 1 and health["state"] == "ok"


@pytest.mark.slow
def test_server_gone_is_disconnected_and_comes_back_on_the_same_port(sim: MjpegCamera, viewer: Viewer) -> None:
    sim.show("ONE")
    assert viewer.sees("ONE")
    viewer.wait_state(State.OK)
    port = sim.port
    sim.stop()
    assert viewer.wait_state(State.DISCONNECTED) == State.DISCONNECTED
    viewer.wait_state(State.RECONNECTING)  # keeps trying, with backoff
    viewer.wait_state(State.DISCONNECTED)  # refused again
    assert viewer.camera.state == State.DISCONNECTED
    sim.start()
    assert sim.port == port
    sim.show("TWO")
    viewer.wait_state(State.OK)
    assert viewer.sees("TWO")


def test_a_camera_that_never_answers_is_disconnected_not_fatal() -> None:
    with MjpegCamera() as gone:
        url = gone.url  # a port that was free a moment ago: connection refused now
    v = Viewer(url, stall_s=1.0, backoff_first_s=0.2, backoff_max_s=0.5, open_timeout_s=1.0)
    try:
        assert v.wait_state(State.DISCONNECTED) == State.DISCONNECTED
        assert "cannot be opened" in v.camera.health()["last_error"]
        assert v.camera.errors == 0  # expected failures are states, not exceptions
    finally:
        v.close()
    assert v.camera.state == State.STOPPED


def test_missing_v4l2_device_is_disconnected_not_fatal() -> None:
    v = Viewer("v4l2:///dev/video-does-not-exist?width=640&height=480&fps=15", stall_s=1.0)
    try:
        assert v.wait_state(State.DISCONNECTED) == State.DISCONNECTED
        assert v.camera.errors == 0
    finally:
        v.close()


def test_cli_serves_until_sigterm() -> None:
    with running("sim", "camera", "--http", "--port", "0", stderr=None) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("camera http://127.0.0.1:") and "/stream.mjpg (control http://127.0.0.1:" in line
        control = line.split("(control ")[1].rstrip(")\n")
        status = json.load(urllib.request.urlopen(control + "status", timeout=WAIT_S))
        assert status["showing"] is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=WAIT_S) == 0
