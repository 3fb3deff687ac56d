"""Reading a file a person points us at (a config, a site file, a broker configuration): every
failure to read it — missing, no permission, a folder, not UTF-8 — becomes one line that names
the file and says what was wrong, instead of a traceback from deep inside a parser.

Each package wraps ``UnreadableFile`` in its own error (``ConfigError``, ``PkiError``, …) with
the same text, so a user sees the same kind of line whatever file it was.
"""

from __future__ import annotations

from pathlib import Path


class UnreadableFile(ValueError):
    """``{path}: cannot read the {what} ({reason})``."""

    def __init__(self, path: Path | str, what: str, reason: str) -> None:
        super().__init__(f"{path}: cannot read the {what} ({reason})")
        self.path = Path(path)


def read_bytes(path: Path | str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UnreadableFile(path, what, exc.strerror or str(exc)) from exc


def read_text(path: Path | str, what: str) -> str:
    """The file as UTF-8 text (TOML and our other text files are UTF-8 by definition)."""
    data = read_bytes(path, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UnreadableFile(path, what, f"not UTF-8 text: byte 0x{data[exc.start]:02x} on line {line}; "
                                         "save the file as UTF-8") from exc
