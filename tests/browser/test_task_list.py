"""The task list in a real browser, on the demo data (seed_demo):

- coordinator.kr (Korean) opens *과제* from the header, filters by status and plan (htmx
  swaps the list and the address keeps the filters), sorts by progress with the keyboard
  (aria-sort follows), downloads the filtered list as CSV and XLSX and finds exactly the
  rows shown, in Korean; a bad date is named on the form;
- samsung downloads its list: only the tasks the policy shows it.

Pages are saved as var/screenshots/task-list-*.png at 1280 and 768 px, in Korean and
English (switched with the header's language buttons, then back)."""

import csv
import io
import re

import openpyxl
import pytest
from django.conf import settings
from django.core.management import call_command

from plans import permissions as policy
from plans.models import Plan, Task
from tracker.models import User

from .conftest import SCREENSHOTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (1280, 768)


def shoot(page, name: str) -> None:
    language = page.evaluate("document.documentElement.lang")
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SCREENSHOTS / f"{name}.{language}.{width}.png"), full_page=True)
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})


def shoot_both_languages(page, name: str) -> None:
    """Screenshots in the page's language, then in the other one, then back; the list
    keeps its filters and sort across the switch."""
    first = page.evaluate("document.documentElement.lang")
    url = page.url
    shoot(page, name)
    other, back = ("English", "한국어") if first == "ko" else ("한국어", "English")
    page.get_by_role("button", name=other, exact=True).click()
    page.wait_for_load_state()
    assert page.evaluate("document.documentElement.lang") != first
    assert page.url == url
    shoot(page, name)
    page.get_by_role("button", name=back, exact=True).click()
    page.wait_for_load_state()
    assert page.evaluate("document.documentElement.lang") == first


def sign_in(browser, live_server, username: str):
    context = browser.new_context(
        locale="ko-KR", viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    page = context.new_page()
    page.goto(live_server.url + "/signin/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(settings.DEMO_PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(live_server.url + "/")
    return page


def download(page, name: str) -> bytes:
    with page.expect_download() as info:
        page.locator(".list-bar__exports").get_by_role("link", name=name).click()
    return open(info.value.path(), "rb").read()


def shown_refs(page) -> list[str]:
    return page.locator(".task-table tbody td:first-child .ref").all_inner_texts()


def test_filter_sort_and_export_the_task_list(live_server, browser):
    from playwright.sync_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    call_command("seed_demo", "--force", stdout=io.StringIO())
    plan = Plan.objects.get(code="KUS-JP2")

    # --- coordinator.kr, in Korean ---------------------------------------------------------
    page = sign_in(browser, live_server, "coordinator.kr")
    page.get_by_role("navigation", name="주 메뉴").get_by_role("link", name="과제").click()
    page.wait_for_url(live_server.url + "/tasks/")
    expect(page.get_by_role("heading", name="과제", level=1)).to_be_visible()
    expect(page.locator("th[aria-sort=ascending]")).to_contain_text("마감")
    shoot_both_languages(page, "task-list-01-all-coordinator-kr")

    # Filter: in progress, Joint Plan 2.0 (htmx swaps the list; the address keeps it).
    page.get_by_label("진행 중").check()
    page.locator("#f-plan").select_option(str(plan.pk))  # "계획" is also a status
    page.get_by_role("button", name="필터 적용").click()
    page.wait_for_url(re.compile(r"status=in_progress"))
    assert f"plan={plan.pk}" in page.url
    expected = list(
        Task.objects.filter(plan=plan, status=Task.Status.IN_PROGRESS)
        .order_by("due_date", "id")
        .values_list("ref", flat=True)
    )
    assert len(expected) >= 2
    expect(page.locator(".list-bar__count")).to_have_text(f"과제 {len(expected)}건")
    assert shown_refs(page) == expected
    expect(page.locator(".task-table tbody .tag--in_progress")).to_have_count(len(expected))

    # Sort by progress with the keyboard: ascending, then descending.
    page.locator("#sort-progress").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"sort=progress"))
    expect(page.locator("th[aria-sort=ascending]")).to_contain_text("진행률")
    page.locator("#sort-progress").focus()  # focus stays on the header after the swap
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"sort=-progress"))
    expect(page.locator("th[aria-sort=descending]")).to_contain_text("진행률")
    assert "status=in_progress" in page.url
    progress = [
        int(value.rstrip("%"))
        for value in page.locator(".task-table tbody td.num").all_inner_texts()
    ]
    assert progress == sorted(progress, reverse=True)
    sorted_refs = shown_refs(page)
    assert sorted(sorted_refs) == sorted(expected)
    shoot_both_languages(page, "task-list-02-filtered-sorted-coordinator-kr")

    # Download exactly this list.
    body = download(page, "CSV")
    assert body.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0][:3] == ["계획", "참조 번호", "제목"]
    assert [row[1] for row in rows[1:]] == sorted_refs
    assert {row[4] for row in rows[1:]} == {"진행 중"}
    workbook = openpyxl.load_workbook(io.BytesIO(download(page, "엑셀(XLSX)")))
    sheet_rows = list(workbook.worksheets[0].iter_rows(values_only=True))
    assert sheet_rows[0][:3] == ("계획", "참조 번호", "제목")
    assert [row[1] for row in sheet_rows[1:]] == sorted_refs

    # A bad date is named on the form, not a server error.
    page.goto(live_server.url + "/tasks/?due_before=0001-01-01")
    expect(page.locator(".error-summary")).to_contain_text("마감일(까지)")
    shoot(page, "task-list-03-bad-date-coordinator-kr")
    page.context.close()

    # --- samsung: its export holds only what the policy shows it ----------------------------
    page = sign_in(browser, live_server, "samsung")
    page.goto(live_server.url + "/tasks/")
    shoot_both_languages(page, "task-list-04-all-samsung")
    rows = list(csv.reader(io.StringIO(download(page, "CSV").decode("utf-8-sig"))))
    samsung = User.objects.get(username="samsung")
    visible = policy.for_user(samsung, policy.VIEW, Task)
    assert sorted(row[1] for row in rows[1:]) == sorted(visible.values_list("ref", flat=True))
    assert len(rows) - 1 < Task.objects.count()
    page.context.close()
