"""Forums, outcomes and the inbox in a real browser, on the demo data (seed_demo):

- coordinator.kr (Korean) goes from the header's forum list to the Korea-US Business Forum,
  to Doosan's SMR MOU, to one of its tasks (two clicks from the forum), and back from the
  task page to the outcome;
- coordinator.us (English) reads the same forum's scorecard;
- manager.kr opens the inbox from the header's unread count, marks one reminder read (htmx:
  the count drops without a page load), then all of them.

Screenshots var/screenshots/forum-*.png, outcome-*.png, inbox-*.png at 1280 and 768 px, in
Korean and English."""

import io
import re

import pytest
from django.core.management import call_command

from notifications import services as notification_services
from notifications.models import Notification
from plans import selectors as plan_selectors
from plans.models import Forum, Outcome
from tracker.models import User

from .conftest import SCREENSHOTS
from .test_workspace import shoot_both_languages, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FORUM = "Korea-US Business Forum"
FORUM_KO = "한미 비즈니스 포럼"  # its Korean name in the demo (fixtures/demo_ko.py)
OUTCOME = "Doosan Enerbility, NuScale Power and US EXIM: SMR supply chain and export financing"


def test_from_a_forum_to_a_task_and_the_inbox(live_server, browser):
    from playwright.sync_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    call_command("seed_demo", "--force", stdout=io.StringIO())
    notification_services.reminders_sweep(whole_day=True, enqueue=False)
    forum = Forum.objects.get(name=FORUM)
    outcome = Outcome.objects.get(title=OUTCOME)
    coordinator = User.objects.get(username="coordinator.kr")
    card = plan_selectors.outcome_scorecard(user=coordinator, forum=forum)[0]

    # --- coordinator.kr, in Korean: forum list -> forum -> outcome -> task -----------------
    page = sign_in(browser, live_server, "coordinator.kr")
    page.get_by_role("navigation", name="주 메뉴").get_by_role("link", name="포럼").click()
    expect(page.get_by_role("heading", name="포럼", exact=True)).to_be_visible()
    row = page.locator("tbody tr", has_text=FORUM_KO)
    expect(row).to_contain_text("2023-04-25")
    expect(row).to_contain_text("비즈니스 포럼")
    figures = [card[name] for name in ("total", *plan_selectors.SCORECARD_CATEGORIES)]
    assert row.locator("td.num").all_inner_texts() == [str(value) for value in figures]
    shoot_both_languages(page, "forum-list")

    row.get_by_role("link", name=FORUM_KO).click()
    expect(page.get_by_role("heading", name=FORUM_KO, exact=True)).to_be_visible()
    expect(page.locator(".scorecard")).to_contain_text(f"이행 중{card['in_implementation']}")
    shoot_both_languages(page, "forum-detail")

    clicks = 0
    page.get_by_role("link", name=OUTCOME).click()
    clicks += 1
    expect(page.get_by_role("heading", name=OUTCOME)).to_be_visible()
    expect(page.locator(".summary-list")).to_contain_text("두산에너빌리티")
    expect(page.locator(".breadcrumb").get_by_role("link", name=FORUM_KO)).to_be_visible()
    shoot_both_languages(page, "outcome-detail")

    page.get_by_role("link", name=re.compile(r"^EN-01 ")).click()
    clicks += 1
    heading = page.get_by_role("heading", name=re.compile(r"EN-01 뉴스케일파워와 SMR 주기기"))
    expect(heading).to_be_visible()
    assert clicks == 2  # "what happened to what we agreed?" is two clicks from the forum
    # ... and back: the task page links its source outcome and its forum
    page.get_by_role("link", name=OUTCOME).click()
    expect(page).to_have_url(f"{live_server.url}/outcomes/{outcome.pk}/")
    page.context.close()

    # --- coordinator.us reads the same forum in English ------------------------------------
    page = sign_in(browser, live_server, "coordinator.us")
    page.goto(f"{live_server.url}/forums/{forum.pk}/")
    expect(page.locator(".scorecard")).to_contain_text(
        f"In implementation{card['in_implementation']}"
    )
    expect(page.get_by_role("columnheader", name="Amount")).to_be_visible()
    page.context.close()

    # --- manager.kr: the inbox from the header, mark one read, then all --------------------
    manager = User.objects.get(username="manager.kr")
    unread = Notification.objects.filter(recipient=manager, read_at=None).count()
    assert unread >= 2, "the demo's sweep gives manager.kr reminders"
    page = sign_in(browser, live_server, "manager.kr")
    inbox_link = page.locator("#inbox-link")
    expect(inbox_link).to_contain_text(str(unread))
    inbox_link.click()
    expect(page.get_by_role("heading", name="알림함")).to_be_visible()
    shoot_both_languages(page, "inbox-unread")

    first = page.locator("tbody tr.is-unread").first
    first.get_by_role("button", name=re.compile("^읽음으로 표시")).click()
    expect(page.get_by_text("읽음으로 표시했습니다.")).to_be_visible()
    expect(page.locator("#inbox-link")).to_contain_text(str(unread - 1))
    assert Notification.objects.filter(recipient=manager, read_at=None).count() == unread - 1

    page.get_by_role("button", name="모두 읽음으로 표시").click()
    expect(page.get_by_text(f"알림 {unread - 1}건을 읽음으로 표시했습니다.")).to_be_visible()
    expect(page.locator("#inbox-link .count-badge")).to_have_count(0)
    assert not Notification.objects.filter(recipient=manager, read_at=None).exists()
    shoot_both_languages(page, "inbox-read")

    # a reminder links to its task
    page.locator("tbody a.task-link").first.click()
    expect(page.locator("h1 .ref")).to_be_visible()
    page.context.close()
