"""What the browser tests share: one Chromium per module."""

from __future__ import annotations

from typing import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

#: Debian's Chromium: Playwright's own browser download cannot reach the internet from here.
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield launched
        launched.close()
