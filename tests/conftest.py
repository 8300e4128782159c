"""Shared fixtures. Service tests (marker `integration`) need DATABASE_URL on PostgreSQL and
REDIS_URL; without them they skip, unless TRACKER_REQUIRE_SERVICES=1 makes that a failure."""

import os

import pytest
from django.conf import settings
from django.utils import translation


def _services_missing() -> str:
    missing = []
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        missing.append("DATABASE_URL (PostgreSQL)")
    if not os.environ.get("REDIS_URL"):
        missing.append("REDIS_URL")
    return ", ".join(missing)


def pytest_collection_modifyitems(config, items):
    missing = _services_missing()
    if not missing or os.environ.get("TRACKER_REQUIRE_SERVICES") == "1":
        return  # run them; _require_services fails them if services are missing
    for item in items:
        if item.get_closest_marker("integration"):
            item.add_marker(pytest.mark.skip(reason=f"service test: set {missing}"))


@pytest.fixture(autouse=True)
def _require_services(request):
    if request.node.get_closest_marker("integration"):
        missing = _services_missing()
        if missing and os.environ.get("TRACKER_REQUIRE_SERVICES") == "1":
            pytest.fail(f"TRACKER_REQUIRE_SERVICES=1 but these are not set: {missing}")


@pytest.fixture(autouse=True)
def _no_language_left_over():
    """A request answers in its user's language and leaves it active in the thread; messages
    are translated when read, so each test starts and ends in the default language."""
    translation.deactivate()
    yield
    translation.deactivate()
