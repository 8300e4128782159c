"""Shared fixtures. Service tests (marker `integration`) need DATABASE_URL on PostgreSQL and
REDIS_URL; without them they skip, unless TRACKER_REQUIRE_SERVICES=1 makes that a failure.

Parallel runs. `make test` runs the suite with pytest-xdist (`-n auto --dist loadgroup`): two
or more processes (gw0, gw1, ...) take tests from one queue. A test must not depend on
another test or on running alone. What each process already has of its own:
- its test database (pytest-django: test_<name>_gw0, test_<name>_gw1, ...);
- its cache keys: on the one REDIS_URL database under the prefix `tests-gw0:` ...
  (tests/settings.py); `cache.clear()` clears only that prefix (tests/cache.py), so call it
  freely to reset throttles. Never FLUSHDB/FLUSHALL, never a fixed Redis key outside the cache;
- `settings.TEST_WORKER` ("gw0", ... or "main" without xdist) to name anything else.
Rules for new tests:
- Ports: bind port 0 (tests.integration.conftest._free_port, pytest-django's live_server);
  never a fixed port. Files: tmp_path, or a name under var/ with a uuid or TEST_WORKER in it.
- Celery: a private queue per test (`test-<uuid>`: celery_worker_process, reminder_queue),
  never the default queues' names.
- Tests that start processes on the shared REDIS_URL (a Celery worker, gunicorn) are kept on
  one xdist process at a time: every test under tests/integration/ is in the group
  "services" (or "faults", the fault suite with its private PostgreSQL and Redis, or
  "multihost", the network-namespace cluster of test_multihost.py), which
  runs in one process, one test after another, as before (test_group() below). Put such a
  test under tests/integration/.
- Heavy shared state (a big world of rows) built once per class or module: a
  `scope="module"` fixture using `django_db_blocker.unblock()` and deleting what it made, or
  django.test.TestCase with setUpTestData; not a per-test fixture rebuilt 50 times.
"""

import os

import pytest
from django.conf import settings
from django.utils import translation


def _services_missing() -> str:
    missing = []
    if not settings.DATABASES["default"]["ENGINE"].endswith(".postgresql"):
        missing.append("DATABASE_URL (PostgreSQL)")
    if not os.environ.get("REDIS_URL"):
        missing.append("REDIS_URL")
    return ", ".join(missing)


def test_group(nodeid: str) -> str | None:
    """The xdist group of a test that starts processes on the shared services: the fault suite
    in "faults", the rest of tests/integration in "services"; None for the others."""
    if nodeid.startswith("tests/integration/test_delivery_faults.py::"):
        return "faults"
    if nodeid.startswith("tests/integration/test_multihost.py::"):
        return "multihost"  # its own namespaces and services: beside the others
    if nodeid.startswith("tests/integration/"):
        return "services"
    return None


def pytest_xdist_make_scheduler(config, log):
    """`--dist loadgroup` with the groups of test_group(): each group is one unit of work, run
    in one process, test after test; every other test is a unit of its own. xdist hands out
    the biggest units first, so the groups start at once, one per process, while the short
    tests fill the other processes. (Done here on the node id rather than with xdist_group
    marks: xdist 3.8 tags a marked test by rewriting `item._nodeid`, which pytest 9 no longer
    reads, so the marks group nothing.)"""
    if config.option.dist != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class Scheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return test_group(nodeid) or super()._split_scope(nodeid)

    return Scheduling(config, log)


def pytest_terminal_summary(terminalreporter):
    """The figures of the multi-host runs (tests/integration/test_multihost.py), passed or
    failed, also from xdist processes (they travel as the reports' user properties)."""
    lines = []
    for key in ("passed", "failed"):
        for report in terminalreporter.stats.get(key, []):
            for name, value in getattr(report, "user_properties", ()):
                if name == "multihost" and getattr(report, "when", "call") == "call":
                    lines.append(f"{report.nodeid.rsplit('::', 1)[-1]} ({key}):\n{value}")
    if lines:
        terminalreporter.write_sep("=", "multi-host runs")
        terminalreporter.write_line("\n\n".join(lines))


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
