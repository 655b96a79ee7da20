"""Headless Chromium (the Debian `chromium` package) driven by Playwright, for page tests."""

import os
import shutil

import pytest


def chromium_path() -> str:
    """The system Chromium; .ci/run installs it and sets PRIVSYNTH_REQUIRE_BROWSER=1."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    if os.environ.get("PRIVSYNTH_REQUIRE_BROWSER"):
        pytest.fail("Chromium is not installed: apt-get install chromium")
    pytest.skip("Chromium is not installed (apt-get install chromium)")
