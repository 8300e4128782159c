"""Browser tests: Debian's chromium (`apt-get install chromium`; .ci/run installs it) driven
by Playwright for Python against pytest-django's live server. Playwright never downloads a
browser here: it is pointed at /usr/bin/chromium.

Without /usr/bin/chromium (or the playwright package) the tests are skipped with the reason,
unless TRACKER_REQUIRE_SERVICES=1 (CI), where a missing browser is a failure."""

import os
from pathlib import Path

import pytest
from django.conf import settings

# Playwright's sync API runs an event loop in this thread; the ORM calls of the test's own
# setup are synchronous and safe here (the live server answers from its own thread).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"


def _missing() -> str:
    if not CHROMIUM.exists():
        return f"no browser at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return ""


def pytest_collection_modifyitems(config, items):
    missing = _missing()
    if not missing or os.environ.get("TRACKER_REQUIRE_SERVICES") == "1":
        return  # run them; _require_browser fails them if the browser is missing
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.skip(reason=f"browser test: {missing}"))


@pytest.fixture(scope="session")
def browser():
    missing = _missing()
    if missing:  # only reached with TRACKER_REQUIRE_SERVICES=1: skipped otherwise
        pytest.fail(f"TRACKER_REQUIRE_SERVICES=1 but {missing}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()
