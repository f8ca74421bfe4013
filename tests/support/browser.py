"""The dashboard in headless Chromium (Debian's ``chromium``) driven by Playwright, for browser tests.

One place for the browser's flags and for how a test reaches a Manager's dashboard, so the
tests follow when the dashboard's address changes (HTTPS, another login).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def require_browser() -> Any:
    """Playwright's sync API; skips the calling test module when Playwright or Chromium is missing."""
    import pytest

    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="the browser test needs Playwright: pip install playwright")
    if not CHROMIUM.exists():
        pytest.skip("the browser test needs Debian's Chromium at /usr/bin/chromium: apt-get install chromium",
                    allow_module_level=True)
    return sync_api


def origin(manager: Any) -> str:
    """The scheme, host and port the dashboard of ``manager`` is served on."""
    return f"https://{manager.host}:{manager.port}"


def dashboard_url(manager: Any) -> str:
    """The address that opens the dashboard signed in (the one ``chimerapy run`` prints): a
    one-time code, valid once, so each call makes a new one."""
    return manager.dashboard_url()


@contextmanager
def chromium_page(sync_api: Any, *, width: int = 1280, height: int = 1000) -> Iterator[Any]:
    """A page of a fresh headless Chromium that records console errors (``page.problems``) and
    every URL it requests (``page.requested``)."""
    with sync_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            ARTIFACTS.mkdir(exist_ok=True)
            # the Manager's certificate is self-signed: trusted here as a Worker trusts it, by its pin
            page = browser.new_page(viewport={"width": width, "height": height}, ignore_https_errors=True)
            page.set_default_timeout(20_000)
            page.problems, page.requested = [], []
            page.on("console", lambda message: message.type == "error" and page.problems.append(message.text))
            page.on("pageerror", lambda error: page.problems.append(str(error)))
            page.on("request", lambda request: page.requested.append(request.url))
            yield page
        finally:
            browser.close()
