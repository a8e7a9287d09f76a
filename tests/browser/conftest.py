"""Fixtures shared by the browser tests."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.chromium import start_chromium


@pytest.fixture
def browser(tmp_path) -> Iterator[Any]:
    """A fresh headless Chromium with its own profile, quit after the test."""
    driver = start_chromium(tmp_path / "profile")
    yield driver
    driver.quit()
