"""The import page in a real browser, on the demo data: coordinator.kr opens it from the
task list, uploads a file with bad rows (the preview lists every bad cell, nothing is
written), uploads the corrected file (the preview lists the new tasks), confirms, and finds
them in the list; then the same in English with English headers.

Screenshots var/screenshots/import-{errors,preview,done}.{ko,en}.{1280,768}.png."""

import csv
import io

import pytest
from django.core.management import call_command
from django.utils import translation

from plans.models import Plan, Task
from workspace import exports

from .conftest import SCREENSHOTS
from .test_workspace import shoot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _csv(rows) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return (exports.BOM + out.getvalue()).encode()


def _files(language: str, plan: Plan, lead: str, prefix: str) -> tuple[bytes, bytes]:
    with translation.override(language):
        names = {c.key: str(c.header) for c in exports.EXPORT_COLUMNS}
    header = [names[k] for k in ("plan", "ref", "title", "due_date", "lead_organization")]
    good = [
        [plan.code, f"{prefix}-1", "Pilot line for glass substrates", "2027-03-31", lead],
        [plan.code, f"{prefix}-2", "Joint workshop on export controls", "2027-06-30", lead],
    ]
    bad = [
        good[0],
        [plan.code, f"{prefix}-2", "Joint workshop on export controls", "30.06.2027", lead],
        [plan.code, f"{prefix}-3", "", "2027-09-30", "No Such Company"],
    ]
    return _csv([header, *bad]), _csv([header, *good])


def _upload(page, name: str, data: bytes):
    page.locator("#import-file").set_input_files(
        {"name": name, "mimeType": "text/csv", "buffer": data}
    )
    page.locator("#import-preview").click()
    page.wait_for_load_state()


def test_upload_preview_fix_and_confirm(live_server, browser):
    from playwright.sync_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    call_command("seed_demo", "--force", stdout=io.StringIO())
    plan = Plan.objects.get(code="KUS-JP2")
    lead = plan.tasks.order_by("pk").first().lead_organization.name
    before = Task.objects.count()

    page = sign_in(browser, live_server, "coordinator.kr")
    page.goto(live_server.url + "/tasks/")
    page.locator("#tasks-import-link").click()
    expect(page.get_by_role("heading", name="과제 가져오기")).to_be_visible()

    for language, prefix in (("ko", "IMP-KO"), ("en", "IMP-EN")):
        bad, good = _files(language, plan, lead, prefix)
        _upload(page, f"tasks-{language}.csv", bad)
        errors = page.locator("#import-errors")
        expect(errors).to_be_visible()
        cells = errors.locator("tbody tr")
        expect(cells).to_have_count(3)  # row 3 date; row 4 title and organization
        assert [t.split("\t")[0] for t in cells.all_inner_texts()] == ["3", "4", "4"]
        assert Task.objects.count() == before  # nothing written
        shoot(page, "import-errors")

        _upload(page, f"tasks-{language}.csv", good)
        expect(page.locator("#count-create")).to_have_text("2")
        expect(page.locator(".import-row--create")).to_have_count(2)
        assert Task.objects.count() == before  # a preview writes nothing
        shoot(page, "import-preview")

        page.locator("#import-confirm").click()
        page.wait_for_url(live_server.url + "/tasks/")
        expect(page.locator(".alert--success")).to_be_visible()
        assert Task.objects.filter(plan=plan, ref__startswith=prefix).count() == 2
        before += 2
        shoot(page, "import-done")
        if language == "ko":  # then in English
            page.get_by_role("button", name="English", exact=True).click()
            page.wait_for_load_state()
            page.locator("#tasks-import-link").click()
            expect(page.get_by_role("heading", name="Import tasks")).to_be_visible()
