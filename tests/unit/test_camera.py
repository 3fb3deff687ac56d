"""Camera URLs, the registry and the stream watchdog (pure: the time is passed in)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.devices.camera import (
    CaptureSpec,
    FolderCamera,
    State,
    StreamCamera,
    Watchdog,
    open_camera,
    parse_stream_url,
    redact,
)
from edge.errors import CameraError


@pytest.mark.parametrize(("url", "spec"), [
    ("http://10.0.0.5:8080/stream.mjpg", CaptureSpec("http://10.0.0.5:8080/stream.mjpg",
                                                     "http://10.0.0.5:8080/stream.mjpg", "ffmpeg")),
    ("https://cam.local/mjpeg?res=hd", CaptureSpec("https://cam.local/mjpeg?res=hd", "https://cam.local/mjpeg?res=hd",
                                                   "ffmpeg")),
    ("rtsp://u:secret@10.0.0.9:554/ch1", CaptureSpec("rtsp://u:***@10.0.0.9:554/ch1", "rtsp://u:secret@10.0.0.9:554/ch1",
                                                     "ffmpeg")),
    ("v4l2:///dev/video0", CaptureSpec("v4l2:///dev/video0", "/dev/video0", "v4l2")),
    ("v4l2:///dev/video2?width=640&height=480&fps=15",
     CaptureSpec("v4l2:///dev/video2?width=640&height=480&fps=15", "/dev/video2", "v4l2", 640, 480, 15.0)),
])
def test_stream_urls_parse(url: str, spec: CaptureSpec) -> None:
    assert parse_stream_url(url) == spec


@pytest.mark.parametrize(("url", "reason"), [
    ("v4l2:///dev/video0?width=abc", "'abc' is not a int"),
    ("v4l2:///dev/video0?resolution=640x480", "unknown option 'resolution'"),
    ("v4l2:///dev/video0?fps=15&fps=30", "given twice"),
    ("v4l2:///dev/video0?width=0", "outside"),
    ("v4l2:///dev/video0?fps=1000", "outside"),
    ("v4l2:///dev/video0?width", "bad query field"),
    ("v4l2://dev/video0", "three slashes"),
    ("v4l2:///video0", "device path"),
    ("http:///stream.mjpg", "no host"),
    ("http://cam:port/x", "Port could not be cast"),
])
def test_bad_stream_urls_name_the_url_and_the_reason(url: str, reason: str) -> None:
    with pytest.raises(CameraError, match="camera URL") as e:
        open_camera(url)
    assert reason in str(e.value)
    assert redact(url) in str(e.value)


def test_unknown_scheme_lists_the_known_ones() -> None:
    with pytest.raises(CameraError, match=r"'usb://0'.*\['file', 'http', 'https', 'rtsp', 'v4l2'\]"):
        open_camera("usb://0")


def test_passwords_never_show() -> None:
    with pytest.raises(CameraError) as e:
        open_camera("rtsp://admin:hunter2@cam/x", stall_s=0)
    assert "hunter2" not in str(e.value)
    cam = open_camera("rtsp://admin:hunter2@cam:554/x")
    assert isinstance(cam, StreamCamera)
    assert "hunter2" not in str(cam.health())
    assert redact("http://cam/x") == "http://cam/x"


def test_registry_builds_each_kind(tmp_path: Path) -> None:
    assert isinstance(open_camera(f"file://{tmp_path}/"), FolderCamera)
    for url in ("http://h/x", "https://h/x", "rtsp://h/x", "v4l2:///dev/video9"):
        cam = open_camera(url)
        assert isinstance(cam, StreamCamera)
        assert cam.state == State.STOPPED  # nothing is opened before frames() runs


def test_missing_folder_is_a_camera_error(tmp_path: Path) -> None:
    with pytest.raises(CameraError, match="does not exist"):
        open_camera(f"file://{tmp_path}/nope/")


# --- the watchdog ---------------------------------------------------------------------------


def now_state(dog: Watchdog) -> State:
    return dog.state  # through a call: mypy would keep the narrowing of an earlier assert


def test_first_frame_then_stall_then_recovery() -> None:
    dog = Watchdog(stall_s=1.0, backoff_first_s=0.5, backoff_max_s=4.0)
    assert dog.state == State.STOPPED
    dog.opening(0.0)
    assert now_state(dog) == State.CONNECTING
    dog.opened(0.1)
    dog.frame(0.2)
    assert now_state(dog) == State.OK
    assert dog.state_at(1.0) == State.OK
    assert dog.state_at(1.2) == State.STALLED  # a read blocked past stall_s is visible from outside
    assert dog.read_failed(1.2, "timeout") == 0.5
    assert (now_state(dog), dog.stalls) == (State.STALLED, 1)
    dog.opening(1.7)
    assert (now_state(dog), dog.reconnects) == (State.RECONNECTING, 1)
    assert dog.open_failed(2.7, "refused") == 1.0  # backoff doubles
    assert (now_state(dog), dog.last_error) == (State.DISCONNECTED, "refused")
    dog.opening(3.7)
    dog.opened(3.8)
    dog.frame(3.9)
    assert (now_state(dog), dog.frames, dog.reconnects) == (State.OK, 2, 2)
    assert dog.read_failed(4.0, "the stream ended") == 0.5  # a frame resets the backoff
    assert now_state(dog) == State.DISCONNECTED  # ended quickly: not a stall


def test_backoff_is_capped() -> None:
    dog = Watchdog(stall_s=1.0, backoff_first_s=0.5, backoff_max_s=3.0)
    delays = []
    for i in range(6):
        dog.opening(float(i))
        delays.append(dog.open_failed(float(i), "refused"))
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert dog.state_at(100.0) == State.DISCONNECTED


def test_no_first_frame_counts_as_stalled_from_the_open() -> None:
    dog = Watchdog(stall_s=2.0)
    dog.opening(10.0)
    dog.opened(10.0)
    assert dog.state_at(11.9) == State.CONNECTING
    assert dog.state_at(12.0) == State.STALLED
    dog.read_failed(12.0, "timeout")
    assert now_state(dog) == State.STALLED
    dog.stopped(13.0)
    assert now_state(dog) == State.STOPPED


@pytest.mark.parametrize(("stall_s", "first", "most"), [(0, 1, 1), (1, 0, 1), (1, 2, 1)])
def test_watchdog_settings_are_checked(stall_s: float, first: float, most: float) -> None:
    with pytest.raises(CameraError, match="watchdog"):
        Watchdog(stall_s, first, most)
