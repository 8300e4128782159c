"""The plan dashboard and its print view in a real browser, on the demo data (seed_demo):

- coordinator.kr (Korean) goes from the header's plans link to Joint Plan 2.0's dashboard,
  reads it in Korean, opens the print view and prints it to A4: at most two pages, dated;
- coordinator.us reads the same plan in English, with the same figures.

Screenshots under var/screenshots/dashboard-*.png at 1280 and 768 px (the print view also as
the printed sheet), and the printed PDFs beside them. Neither page scrolls sideways at 768 px.
"""

import io
import re

import pytest
from django.conf import settings
from django.core.management import call_command

from plans.models import Plan, Task

from .conftest import SCREENSHOTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (1280, 768)
A4_WIDTH = 794  # px at 96 dpi


def pdf_pages(data: bytes) -> int:
    """Pages of a PDF Chromium wrote: its page objects (`/Type /Page`, not `/Pages`)."""
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data))


def shoot(page, name: str) -> None:
    language = page.evaluate("document.documentElement.lang")
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        # Nothing wider than the window: no sideways scrolling at 768 px.
        assert page.evaluate("document.documentElement.scrollWidth") <= width, (name, width)
        page.screenshot(
            path=str(SCREENSHOTS / f"dashboard-{name}.{language}.{width}.png"), full_page=True
        )
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})


def print_to_pdf(page, name: str) -> bytes:
    """The print view as Chromium prints it on A4, saved with a picture of the sheet."""
    language = page.evaluate("document.documentElement.lang")
    data = page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
    (SCREENSHOTS / f"dashboard-{name}.{language}.pdf").write_bytes(data)
    page.emulate_media(media="print")
    page.set_viewport_size({"width": A4_WIDTH, "height": 1123})
    page.screenshot(path=str(SCREENSHOTS / f"dashboard-{name}.{language}.a4.png"), full_page=True)
    page.emulate_media(media="screen")
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})
    return data


def sign_in(browser, live_server, username: str):
    context = browser.new_context(locale="ko-KR", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(live_server.url + "/signin/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(settings.DEMO_PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(live_server.url + "/")
    return page


def headline(page) -> list[str]:
    return page.locator(".figure__value").all_inner_texts()


def test_the_dashboard_and_its_print_view(live_server, browser):
    from playwright.sync_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    call_command("seed_demo", "--force", stdout=io.StringIO())
    plan = Plan.objects.get(code="KUS-JP2")

    # --- coordinator.kr, in Korean ------------------------------------------------------------
    page = sign_in(browser, live_server, "coordinator.kr")
    page.locator(".site-header").get_by_role("link", name="계획", exact=True).click()
    expect(page.get_by_role("heading", name="계획", exact=True)).to_be_visible()
    shoot(page, "plans")
    page.get_by_role("link", name=re.compile("KUS-JP2")).click()
    page.wait_for_url(f"{live_server.url}/plans/{plan.pk}/")
    for heading in (
        "분과별 진행률",
        "상태별 과제",
        "일정",
        "포럼별 성과 이행 현황",
        "최근 변경 사항",
    ):
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
    expect(page.locator("svg.chart--timeline .t-today")).to_have_count(1)
    drawn = Task.objects.filter(plan=plan).exclude(status=Task.Status.CANCELLED).count()
    assert page.locator("svg.chart--timeline .t-bar").count() == drawn
    korean_figures = headline(page)
    shoot(page, "plan")

    page.get_by_role("link", name="인쇄용 보기(A4)").click()
    page.wait_for_url(f"{live_server.url}/plans/{plan.pk}/print/")
    expect(page.locator(".sheet__date")).to_contain_text(
        re.compile(r"\d{4}년 \d{1,2}월 \d{1,2}일 기준")
    )
    expect(page.locator(".sheet__kicker")).to_contain_text("계획 이행 현황 보고")
    assert headline(page) == korean_figures
    shoot(page, "print")
    data = print_to_pdf(page, "print")
    assert 1 <= pdf_pages(data) <= 2, pdf_pages(data)
    page.context.close()

    # --- coordinator.us reads the same plan in English ---------------------------------------
    page = sign_in(browser, live_server, "coordinator.us")
    page.goto(f"{live_server.url}/plans/{plan.pk}/")
    for heading in ("Progress by workstream", "Tasks by status", "Timeline", "Outcomes by forum"):
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
    assert headline(page) == korean_figures  # both coordinate the plan: the same figures
    shoot(page, "plan")
    page.get_by_role("link", name="Print view (A4)").click()
    expect(page.locator(".sheet__date")).to_contain_text(re.compile(r"As of \w+\.? \d{1,2}, \d{4}"))
    expect(page.locator(".sheet__kicker")).to_contain_text("Plan status report")
    shoot(page, "print")
    data = print_to_pdf(page, "print")
    assert 1 <= pdf_pages(data) <= 2, pdf_pages(data)
    page.context.close()


def test_pdf_pages_counts_page_objects_only():
    assert (
        pdf_pages(b"<< /Type /Pages /Count 2 >> << /Type /Page >> << /Type/Page/Parent 1 >>") == 2
    )
