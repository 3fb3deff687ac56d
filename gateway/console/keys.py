"""The console's secrets on disk: the session-signing key (``DATA/console.secret``, created 0600 on
first start) and the optional bearer token of ``/metrics`` (``metrics_token_file``)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from gateway.errors import GatewayError

SECRET_NAME = "console.secret"
SECRET_BYTES = 32  # 256 bits signing the session cookies (itsdangerous HMAC)
TOKEN_MIN = 16  # characters: a shorter metrics token is guessable by a scraper on the network


def session_secret(data_dir: Path) -> str:
    """The key that signs session cookies: read, or created (0600) if absent.  Deleting the file
    and restarting logs everybody out."""
    path = data_dir / SECRET_NAME
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            text = path.read_text(encoding="ascii").strip()
        else:
            text = secrets.token_hex(SECRET_BYTES)
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(text + "\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise GatewayError(f"{path}: cannot read or create the console's session key ({exc})") from exc
    if len(text) < 2 * SECRET_BYTES:
        raise GatewayError(f"{path}: the console's session key is too short; delete the file to make a new one")
    return text


def metrics_token(path: Path | None) -> str | None:
    """The bearer token /metrics asks for (the file's first line), or None when no file is set."""
    if path is None:
        return None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise GatewayError(f"setting console.metrics_token_file: {path}: {exc}") from exc
    token = lines[0].strip() if lines else ""
    if len(token) < TOKEN_MIN:
        raise GatewayError(f"setting console.metrics_token_file: {path}: the token needs at least {TOKEN_MIN}"
                           " characters on its first line")
    return token
