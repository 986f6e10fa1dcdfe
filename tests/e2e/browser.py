"""Debian's headless Chromium for the browser tests: the driver, and their screenshots.

`chromium` and `chromium-driver` (`make test` installs them when missing). Selenium is pointed
at /usr/bin/chromedriver, so it never looks for, or downloads, a driver or a browser. Without
them a test is skipped with a hint, except under CI=true where it fails.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.servers import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1150",
)
WAIT = 10  # seconds, for every wait on the page
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR", ROOT / "test-artifacts"))
# The pictures in the README: UPDATE_README_SCREENSHOT=1 copies them to docs/.
README_SCREENSHOTS = (
    "trace-viewer.png",
    "trace-viewer-overview.png",
    "trace-viewer-waterfall.png",
    "prometheus-dashboard-queries.png",
)


def require_browser() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if not missing:
        return
    hint = f"no headless browser ({', '.join(missing)}): apt-get install chromium chromium-driver"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(hint)
    pytest.skip(hint)


def chromium(directory: Path) -> Iterator[Any]:
    """A headless Chromium driven by Selenium, its profile and driver log in `directory`."""
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={directory / 'chromium-profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER, log_output=str(directory / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(WAIT * 2)
    driver.set_script_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


def save_screenshot(driver, name: str) -> Path:
    """Keep a picture of the page as a test artifact (test-artifacts/, or TEST_ARTIFACTS_DIR)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    driver.execute_script("window.scrollTo(0, 0)")
    assert driver.save_screenshot(str(path)), f"no screenshot at {path}"
    if os.environ.get("UPDATE_README_SCREENSHOT") and name in README_SCREENSHOTS:
        shutil.copyfile(path, ROOT / "docs" / name)
    return path
