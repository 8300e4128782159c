"""Readout intake in a real browser, on the demo data (seed_demo): coordinator.kr (Korean)
opens the 2nd SCCD Ministerial from the forum page, pastes a readout (written for the tests),
edits one draft, drops one, confirms two (htmx: one draft swapped at a time, the tasks
section follows) and creates their tasks in Joint Plan 2.0 in one action.

Screenshots var/screenshots/intake-*.png at 1280 and 768 px, in Korean and English."""

import io

import pytest
from django.core.management import call_command

from plans.intake.models import OutcomeDraft
from plans.models import Forum, Task

from ..plans.test_intake_reading import READOUT_EN
from .conftest import SCREENSHOTS
from .test_workspace import shoot_both_languages, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FORUM = "2nd U.S.-Korea SCCD Ministerial Meeting"
FORUM_KO = "제2차 한미 공급망·산업대화(SCCD) 장관회의"


def test_paste_edit_drop_confirm_and_create_tasks(live_server, browser):
    from playwright.sync_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    call_command("seed_demo", "--force", stdout=io.StringIO())
    forum = Forum.objects.get(name=FORUM)

    page = sign_in(browser, live_server, "coordinator.kr")
    page.goto(f"{live_server.url}/forums/{forum.pk}/")
    page.get_by_role("link", name="결과 발표문 붙여넣기").click()
    expect(page.get_by_role("heading", name=f"결과 발표문 입력: {FORUM_KO}")).to_be_visible()
    page.get_by_label("공동성명, 결과 발표문 또는 보도자료 본문").fill(READOUT_EN)
    page.get_by_label("발표일").fill("2025-03-14")
    page.get_by_role("button", name="약속 사항 찾기").click()
    expect(page.get_by_role("status").first).to_contain_text("약속 사항 11건을 찾았습니다")
    drafts = page.locator("article.draft")
    expect(drafts).to_have_count(11)
    first = drafts.nth(0)
    expect(first.locator(".draft__meta")).to_contain_text("2025-09-30 · “by the end of Q3”")
    shoot_both_languages(page, "intake-review")

    # Edit the first draft: a shorter title (htmx swaps only that draft).
    first_id = OutcomeDraft.objects.order_by("position").first().pk
    first = page.locator(f"#draft-{first_id}")
    first.get_by_label("제목").fill("배터리 공급망 조기경보 체계 구축")
    first.get_by_role("button", name="변경 내용 저장").click()
    expect(page.locator(f"#draft-{first_id}")).to_contain_text("초안을 저장했습니다.")
    expect(page.locator(f"#draft-{first_id} h3")).to_have_text("배터리 공급망 조기경보 체계 구축")

    # Drop KOTRA's desk (not part of the plan), confirm the first and Samsung's pledge.
    kotra = OutcomeDraft.objects.get(sentence__startswith="KOTRA launched")
    page.locator(f"#draft-{kotra.pk}").get_by_role("button", name="제외").click()
    expect(page.locator(f"#draft-{kotra.pk}")).to_contain_text("제외했습니다.")
    page.locator(f"#draft-{first_id}").get_by_role("button", name="성과로 확정").click()
    expect(page.locator(f"#draft-{first_id}")).to_contain_text("확정했습니다.")
    samsung = OutcomeDraft.objects.get(sentence__startswith="Samsung pledged")
    page.locator(f"#draft-{samsung.pk}").get_by_role("button", name="성과로 확정").click()
    expect(page.locator(f"#draft-{samsung.pk}")).to_contain_text("확정했습니다.")

    # The tasks section followed the confirmations without a page load.
    tasks = page.locator("#intake-tasks")
    expect(tasks.get_by_label("배터리 공급망 조기경보 체계 구축")).to_be_visible()
    shoot_both_languages(page, "intake-confirmed")  # reloads the page: fill the form after
    tasks.get_by_label("배터리 공급망 조기경보 체계 구축").check()
    tasks.get_by_label("USD 2.5 billion", exact=False).check()
    tasks.get_by_label("계획").select_option(
        label=tasks.get_by_label("계획").locator("option", has_text="KUS-JP2").inner_text()
    )
    tasks.get_by_label("번호 접두어").fill("RD")
    tasks.get_by_role("button", name="과제 만들기").click()
    expect(page.get_by_role("status").first).to_contain_text(
        "KUS-JP2에 과제 2건을 만들었습니다: RD-01, RD-02."
    )
    made = Task.objects.filter(plan__code="KUS-JP2", ref__in=["RD-01", "RD-02"]).order_by("ref")
    assert [task.title_ko for task in made] == ["배터리 공급망 조기경보 체계 구축", None]
    assert [task.source_outcomes.get().draft.pk for task in made] == [first_id, samsung.pk]
    assert made[0].lead_organization.name == "Ministry of Trade, Industry and Energy"
    shoot_both_languages(page, "intake-done")
    page.context.close()
