"""Load one process's TOML config into its typed, frozen model; errors name the dotted key.

The models live with the process that owns them (``edge.config``, ``gateway.config``); this is
the one loader, so every process reports a bad key the same way and command-line flags override
the file the same way.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from edge import files
from wastecart.errors import WastecartError

M = TypeVar("M", bound=BaseModel)


class ConfigError(WastecartError):
    """The config file is unreadable or a key in it is unknown or has a bad value."""


def load(model: type[M], path: Path | None, overrides: Mapping[str, Any] | None = None) -> M:
    """Read ``path`` (or start from defaults), apply dotted ``overrides`` (flags), validate."""
    data: dict[str, Any] = {}
    where = str(path) if path else "no --config file given"
    if path is not None:
        try:
            data = tomllib.loads(files.read_text(path, "config"))
        except files.UnreadableFile as exc:
            raise ConfigError(str(exc)) from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{dotted_path(err['loc']) or '(top)'}: {err['msg']}"
            + (f" (got {err['input']!r})" if err["type"] != "missing" and not isinstance(err["input"], dict) else "")
            for err in exc.errors()
        ]
        raise ConfigError(f"{where}: " + "; ".join(problems)) from exc


def dotted_path(loc: tuple[int | str, ...]) -> str:
    """pydantic's error location as the TOML reader sees it: ``codes.external[0].pattern``."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
