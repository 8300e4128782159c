"""The workspace in a real browser, on the demo data (seed_demo), as the demo's people:

- samsung (Korean) signs in, lands on its tasks, starts a planned task from home (two clicks
  to the first report), is told on the form when marking it done without a note, then marks
  it done with a note and an evidence link;
- coordinator.kr (Korean) verifies it and moves another task's deadline with a reason;
- coordinator.us reads the plan's figures in English;
- doosan gets "not found" on samsung's task.

Every page is saved under var/screenshots/ at 1280 and 768 px, in Korean and in English
(switched with the header's language buttons, then switched back)."""

import datetime as dt
import io
import re

import pytest
from django.conf import settings
from django.core.management import call_command

from plans import services
from plans.models import Plan, StatusUpdate, Task
from tracker.models import Organization, User

from .conftest import SCREENSHOTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (1280, 768)
NOTE = "Training report published on the KSIA site."
EVIDENCE = "https://example.org/evidence/sc-90-report.pdf"
REASON = "KSIA and SIA moved the pilot exchange to the spring meeting."


def shoot(page, name: str) -> None:
    language = page.evaluate("document.documentElement.lang")
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SCREENSHOTS / f"{name}.{language}.{width}.png"), full_page=True)
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})


def shoot_both_languages(page, name: str) -> None:
    """Screenshots in the page's language, then in the other one, then back."""
    first = page.evaluate("document.documentElement.lang")
    shoot(page, name)
    other, back = ("English", "한국어") if first == "ko" else ("한국어", "English")
    page.get_by_role("button", name=other, exact=True).click()
    page.wait_for_load_state()
    assert page.evaluate("document.documentElement.lang") != first
    shoot(page, name)
    page.get_by_role("button", name=back, exact=True).click()
    page.wait_for_load_state()
    assert page.evaluate("document.documentElement.lang") == first


def sign_in(browser, live_server, username: str):
    context = browser.new_context(locale="ko-KR", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(live_server.url + "/")
    assert "/signin/" in page.url
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(settings.DEMO_PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(live_server.url + "/")
    return page


def test_the_demo_walkthrough(live_server, browser):
    from playwright.sync_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    call_command("seed_demo", "--force", stdout=io.StringIO())
    # The demo has no planned task of Samsung's: its coordinator adds one.
    plan = Plan.objects.get(code="KUS-JP2")
    task = services.task_create(
        actor=User.objects.get(username="coordinator.kr"),
        plan=plan,
        workstream=plan.workstreams.get(code="SC"),
        ref="SC-90",
        title="Publish the pilot cohort's training report",
        lead_organization=Organization.objects.get(name="Samsung Electronics"),
        due_date=dt.date(2027, 1, 29),
    )
    other = Task.objects.get(plan=plan, ref="SC-05")
    assert plan.requires_evidence

    # --- the sign-in page, before anyone signs in --------------------------------------
    context = browser.new_context(locale="ko-KR", viewport={"width": 1280, "height": 900})
    anonymous = context.new_page()
    anonymous.goto(live_server.url + "/")
    expect(anonymous.get_by_role("heading", name="로그인")).to_be_visible()
    shoot_both_languages(anonymous, "01-sign-in")
    context.close()

    # --- samsung: from home to the first report in two clicks, then done -----------------
    page = sign_in(browser, live_server, "samsung")
    expect(page.get_by_role("heading", name="내 과제")).to_be_visible()
    expect(page.get_by_text("Asia/Seoul (KST)")).to_be_visible()
    shoot_both_languages(page, "02-home-samsung")
    clicks = 0
    page.get_by_role("link", name=re.compile(r"^시작\W*SC-90$")).click()
    clicks += 1
    start = page.locator("#move-in_progress")
    expect(start.get_by_role("button", name="시작 저장")).to_be_visible()
    start.get_by_role("button", name="시작 저장").click()
    clicks += 1
    expect(page.get_by_text("상태를 '진행 중'(으)로 바꿨습니다.")).to_be_visible()
    assert clicks <= 3
    task.refresh_from_db()
    assert task.status == Task.Status.IN_PROGRESS

    done = page.locator("#move-done")
    done.locator("summary").click()
    done.get_by_role("button", name="완료 처리 저장").click()  # no note: refused, on the form
    expect(page.get_by_text("확인이 필요합니다")).to_be_visible()
    expect(page.locator(".error-summary")).to_contain_text("메모가 필요합니다")
    shoot(page, "03-task-refused-samsung")
    task.refresh_from_db()
    assert task.status == Task.Status.IN_PROGRESS
    done = page.locator("#move-done")
    done.get_by_label("메모").fill(NOTE)
    done.get_by_label("증빙 링크").fill(EVIDENCE)
    done.get_by_role("button", name="완료 처리 저장").click()
    expect(page.get_by_text("상태를 '완료'(으)로 바꿨습니다.")).to_be_visible()
    expect(page.locator(".timeline")).to_contain_text(NOTE)
    expect(page.locator(".timeline")).to_contain_text(EVIDENCE)
    shoot_both_languages(page, "04-task-done-samsung")
    task.refresh_from_db()
    assert task.status == Task.Status.DONE
    page.context.close()

    # --- coordinator.kr, in Korean: verify, then move another deadline with a reason ------
    page = sign_in(browser, live_server, "coordinator.kr")
    expect(page.get_by_role("heading", name="검증을 기다리는 과제")).to_be_visible()
    shoot_both_languages(page, "05-home-coordinator-kr")
    page.get_by_role("link", name=re.compile("SC-90")).first.click()
    verify = page.locator("#move-verified")
    verify.locator("summary").click()
    verify.get_by_role("button").click()
    expect(page.get_by_text("상태를 '검증 완료'(으)로 바꿨습니다.")).to_be_visible()
    task.refresh_from_db()
    assert task.status == Task.Status.VERIFIED
    shoot_both_languages(page, "06-task-verified-coordinator-kr")

    page.goto(f"{live_server.url}/tasks/{other.pk}/")
    deadline = page.locator("#deadline")
    deadline.locator("summary").click()
    deadline.get_by_label("새 마감일").fill("2027-03-31")
    deadline.get_by_label("사유").fill(REASON)
    deadline.get_by_role("button", name="마감일 변경 저장").click()
    expect(page.get_by_text("마감일을 2027-03-31(으)로 바꿨습니다.")).to_be_visible()
    expect(page.locator(".timeline")).to_contain_text(f"사유: {REASON}")
    shoot_both_languages(page, "07-deadline-moved-coordinator-kr")
    other.refresh_from_db()
    assert other.due_date == dt.date(2027, 3, 31)
    assert StatusUpdate.objects.filter(task=other, kind="deadline_change", note=REASON).exists()
    page.context.close()

    # --- coordinator.us reads the plan's figures in English -------------------------------
    page = sign_in(browser, live_server, "coordinator.us")
    expect(page.get_by_role("heading", name="Plans you coordinate")).to_be_visible()
    expect(page.get_by_text("America/New_York")).to_be_visible()
    expect(page.locator("table").first).to_contain_text("KUS-JP2")
    shoot_both_languages(page, "08-home-coordinator-us")
    page.context.close()

    # --- doosan: samsung's task is not found ------------------------------------------------
    page = sign_in(browser, live_server, "doosan")
    response = page.goto(f"{live_server.url}/tasks/{task.pk}/")
    assert response.status == 404
    expect(page.get_by_role("heading", name="찾을 수 없음")).to_be_visible()
    assert "SC-90" not in page.content()
    shoot_both_languages(page, "09-not-found-doosan")
    page.context.close()
