"""A plan's next version in a real browser, on the demo data (seed_demo): coordinator.kr
opens Joint Plan 2.0's dashboard (Korean), follows "New version of this plan", finds every
open task ticked, unticks one and creates KUS-JP3; coordinator.us (English) opens the form of
the new plan. Screenshots at 1280 and 768 px under var/screenshots/new-version-*.png; no page
scrolls sideways at 768 px."""

import io
import re

import pytest
from django.core.management import call_command

from plans.models import Plan, Task

from .conftest import SCREENSHOTS
from .test_dashboard import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WIDTHS = (1280, 768)


def shoot(page, name: str) -> None:
    language = page.evaluate("document.documentElement.lang")
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate("document.documentElement.scrollWidth") <= width, (name, width)
        page.screenshot(
            path=str(SCREENSHOTS / f"new-version-{name}.{language}.{width}.png"), full_page=True
        )
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})


def test_a_coordinator_starts_the_next_version_of_a_plan(live_server, browser):
    from playwright.sync_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    call_command("seed_demo", "--force", stdout=io.StringIO())
    plan = Plan.objects.get(code="KUS-JP2")
    open_tasks = list(plan.tasks.filter(status__in=Task.OPEN_STATUSES).order_by("due_date", "ref"))
    assert len(open_tasks) >= 2
    left_behind = open_tasks[0]

    # --- coordinator.kr, in Korean ------------------------------------------------------------
    page = sign_in(browser, live_server, "coordinator.kr")
    page.goto(f"{live_server.url}/plans/{plan.pk}/")
    shoot(page, "dashboard")
    page.get_by_role("link", name="이 계획의 새 버전").click()
    page.wait_for_url(f"{live_server.url}/plans/{plan.pk}/new-version/")
    expect(page.get_by_role("heading", name="이 계획의 새 버전")).to_be_visible()
    boxes = page.locator('input[name="tasks"]')
    assert boxes.count() == len(open_tasks)
    for index in range(boxes.count()):
        expect(boxes.nth(index)).to_be_checked()
    shoot(page, "form")

    page.locator("#id_code").fill("KUS-JP3")
    page.locator("#id_title_en").fill("Korea-US Joint Plan 3.0")
    page.locator("#id_title_ko").fill("한미 공동 계획 3.0")
    page.locator(f"#id_tasks_{left_behind.pk}").uncheck()
    page.get_by_role("button", name="새 버전 만들기").click()
    new = Plan.objects.get(code="KUS-JP3")
    page.wait_for_url(f"{live_server.url}/plans/{new.pk}/")
    expect(page.locator(".messages, [role=status]").first).to_contain_text("KUS-JP3")
    shoot(page, "created")

    assert new.predecessor == plan
    assert new.tasks.count() == len(open_tasks) - 1
    assert set(new.tasks.values_list("predecessor__ref", flat=True)) == {
        task.ref for task in open_tasks[1:]
    }
    assert Task.objects.get(pk=left_behind.pk).status == left_behind.status
    assert all(
        Task.objects.get(pk=task.pk).status == Task.Status.CANCELLED for task in open_tasks[1:]
    )
    page.context.close()

    # --- coordinator.us, in English: the form of the new plan ------------------------------------
    page = sign_in(browser, live_server, "coordinator.us")
    page.goto(f"{live_server.url}/plans/{new.pk}/")
    page.get_by_role("link", name="New version of this plan").click()
    expect(page.get_by_role("heading", name="New version of this plan")).to_be_visible()
    expect(page.locator("#id_title_en")).to_have_value("Korea-US Joint Plan 3.0")
    expect(page.get_by_text(re.compile(r"\d+ open tasks?; all are ticked"))).to_be_visible()
    shoot(page, "form")
    # A refusal: the code is taken; the form says so and nothing is written.
    page.locator("#id_code").fill("KUS-JP2")
    page.get_by_role("button", name="Create the new version").click()
    expect(page.locator(".error-summary")).to_be_visible()
    shoot(page, "refused")
    assert Plan.objects.filter(predecessor=new).count() == 0
    page.context.close()
