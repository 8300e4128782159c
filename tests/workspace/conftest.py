"""Workspace tests read Korean pages: they need the compiled catalog that `make messages`
builds (make test runs it first). Run bare pytest after `make messages`."""

from pathlib import Path

import pytest
from django.conf import settings

PO = Path(settings.BASE_DIR) / "locale" / "ko" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")


@pytest.fixture(autouse=True, scope="session")
def _compiled_catalog():
    if not MO.exists() or MO.stat().st_mtime < PO.stat().st_mtime:
        pytest.fail(f"{MO} is missing or older than the .po: run `make messages` first.")
