"""Playwright's ``expect`` for the browser test modules, or a skip of the importing module.

The dev extra installs playwright; CI sets ``WASTECART_REQUIRE_BROWSER``, so a missing install fails there
instead of hiding behind a skip.
"""

from __future__ import annotations

import os

import pytest

try:
    from playwright.sync_api import expect
except ImportError:
    if os.environ.get("WASTECART_REQUIRE_BROWSER"):
        raise
    pytest.skip("playwright is not installed: pip install -e '.[dev]'", allow_module_level=True)

__all__ = ["expect"]
