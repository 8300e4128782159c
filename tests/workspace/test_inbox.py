"""The inbox: one's own reminders newest first with links to their tasks, mark one or all
read (POST; redirect without JavaScript, a partial swap with htmx), someone else's
notification is 404, the unread count in every page's header costs ONE query, and the page
takes the same number of queries for 5 or 50 notifications."""

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from notifications.models import Notification
from tests.factories import MembershipFactory, OrganizationFactory, PlanFactory, TaskFactory
from tracker.models import Membership, User

from .helpers import sign_in, task_url, text

INBOX = reverse("workspace:inbox")
READ_ALL = reverse("workspace:inbox-read-all")
HTMX = {"HTTP_HX_REQUEST": "true"}


def read_url(notification) -> str:
    return reverse("workspace:inbox-read", args=[notification.pk])


_steps = iter(range(1, 1_000_000))


def notify(user, task, *, kind="due_soon", minutes_ago=0, read=False) -> Notification:
    at = timezone.now() - dt.timedelta(minutes=minutes_ago)
    step = next(_steps)
    return Notification.objects.create(
        recipient=user,
        task=task,
        kind=kind,
        due_date=task.due_date,
        step=step,
        dedupe_key=Notification.key(user.pk, task.pk, kind, task.due_date, step),
        created_at=at,
        due_at=at,
        read_at=at if read else None,
    )


def header_count(response) -> str:
    """The unread figure in the header's inbox link ('' when none is shown)."""
    match = re.search(r'<a id="inbox-link"[^>]*>(.*?)</a>', response.content.decode(), re.S)
    assert match, "no inbox link in the header"
    figure = re.search(r'class="count-badge">(\d+)', match.group(1))
    return figure.group(1) if figure else ""


@pytest.fixture
def people(db):
    firm = OrganizationFactory(name="Samsung Electronics")
    plan = PlanFactory(code="KUS-JP2", members=[firm])
    me = MembershipFactory(organization=firm, role=Membership.Role.CONTRIBUTOR).user
    colleague = MembershipFactory(organization=firm, role=Membership.Role.CONTRIBUTOR).user
    task = TaskFactory(plan=plan, ref="SC-90", title="Training report", lead_organization=firm)
    return {"me": me, "colleague": colleague, "task": task, "plan": plan, "firm": firm}


def test_the_inbox_lists_only_my_notifications_newest_first(client, people):
    me, task = people["me"], people["task"]
    older = notify(me, task, kind="due_soon", minutes_ago=60)
    newer = notify(me, task, kind="overdue", minutes_ago=1)
    notify(people["colleague"], task, kind="escalation_manager")
    response = sign_in(client, me).get(INBOX)
    page, html = text(response), response.content.decode()
    assert response.status_code == 200
    assert "Due soon" in page and "Overdue" in page
    assert "escalated" not in page  # the colleague's
    assert html.index(f"notification-{newer.pk}") < html.index(f"notification-{older.pk}")
    assert f'href="{task_url(task)}"' in html and "SC-90 Training report" in page
    assert "2 unread reminders." in page


def test_a_task_i_can_no_longer_see_is_not_linked(client, people):
    hidden = TaskFactory(ref="ZZ-01", title="Another firm's secret")
    notify(people["me"], hidden)
    response = sign_in(client, people["me"]).get(INBOX)
    assert "A task you can no longer see" in text(response)
    assert "ZZ-01" not in text(response) and task_url(hidden) not in response.content.decode()


def test_mark_one_read_without_javascript(client, people):
    me = people["me"]
    first, second = notify(me, people["task"]), notify(me, people["task"])
    response = sign_in(client, me).post(read_url(first))
    assert response.status_code == 302 and response["Location"] == INBOX
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.read_at is not None and second.read_at is None
    page = client.get(INBOX)
    assert "Marked as read." in text(page)
    assert header_count(page) == "1"
    # marking it again changes nothing and is no error
    read_at = first.read_at
    assert client.post(read_url(first)).status_code == 302
    first.refresh_from_db()
    assert first.read_at == read_at


def test_mark_one_read_with_htmx_swaps_the_list_and_the_header_count(client, people):
    me = people["me"]
    first, _second = notify(me, people["task"]), notify(me, people["task"])
    response = sign_in(client, me).post(read_url(first), **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.startswith('<div id="inbox-main">') and "<html" not in html
    assert 'id="inbox-link"' in html and 'hx-swap-oob="true"' in html
    assert header_count(response) == "1"
    assert "Marked as read." in text(response)


def test_someone_elses_notification_is_not_found(client, people):
    theirs = notify(people["colleague"], people["task"])
    sign_in(client, people["me"])
    assert client.post(read_url(theirs)).status_code == 404
    assert client.post(read_url(theirs), **HTMX).status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None
    # the owner may
    sign_in(client, people["colleague"])
    assert client.post(read_url(theirs)).status_code == 302
    theirs.refresh_from_db()
    assert theirs.read_at is not None


def test_a_superuser_marks_only_their_own(client, people):
    theirs = notify(people["colleague"], people["task"])
    admin = User.objects.create_user("admin", password="x", is_superuser=True)
    assert sign_in(client, admin).post(read_url(theirs)).status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_unknown_notification_is_not_found(client, people):
    assert (
        sign_in(client, people["me"]).post(reverse("workspace:inbox-read", args=[999])).status_code
        == 404
    )


def test_mark_all_read_marks_only_mine(client, people):
    me, task = people["me"], people["task"]
    mine = [notify(me, task) for _ in range(3)]
    theirs = notify(people["colleague"], task)
    sign_in(client, me)
    response = client.post(READ_ALL)
    assert response.status_code == 302 and response["Location"] == INBOX
    assert Notification.objects.filter(pk__in=[n.pk for n in mine], read_at=None).count() == 0
    theirs.refresh_from_db()
    assert theirs.read_at is None
    page = client.get(INBOX)
    assert "3 notifications marked as read." in text(page)
    assert header_count(page) == ""
    assert "Mark all as read" not in text(page)


def test_mark_all_read_with_htmx(client, people):
    me = people["me"]
    notify(me, people["task"])
    response = sign_in(client, me).post(READ_ALL, **HTMX)
    assert response.status_code == 200
    assert header_count(response) == ""
    assert "1 notification marked as read." in text(response)


def test_marking_needs_post_and_signing_in(client, people):
    mine = notify(people["me"], people["task"])
    assert client.post(read_url(mine)).status_code == 302  # to the sign-in page
    assert client.post(READ_ALL).status_code == 302
    mine.refresh_from_db()
    assert mine.read_at is None
    response = client.get(INBOX)
    assert response.status_code == 302 and "/signin/" in response["Location"]
    sign_in(client, people["me"])
    assert client.get(read_url(mine)).status_code == 405
    assert client.get(READ_ALL).status_code == 405


def test_inbox_in_korean(client, people):
    me = people["me"]
    me.language = User.Language.KOREAN
    me.save(update_fields=["language"])
    notify(me, people["task"], kind="due_today")
    page = text(sign_in(client, me).get(INBOX))
    assert "알림함" in page and "오늘 마감" in page and "읽음으로 표시" in page
    assert "읽지 않은 알림 1건." in page
    assert "Due today" not in page


# --- The header's unread count ---------------------------------------------------------------


def notification_queries(queries) -> list[str]:
    return [q["sql"] for q in queries if "notifications_notification" in q["sql"]]


@pytest.mark.parametrize("url", ["workspace:home", "workspace:forums", "task"])
def test_every_page_shows_the_unread_count_in_one_count_query(client, people, url):
    me, task = people["me"], people["task"]
    for _ in range(4):
        notify(me, task)
    notify(me, task, read=True)
    notify(people["colleague"], task)
    target = task_url(task) if url == "task" else reverse(url)
    sign_in(client, me)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(target)
    assert header_count(response) == "4"
    sql = notification_queries(queries)
    assert len(sql) == 1 and "COUNT(" in sql[0].upper()


def test_no_badge_without_unread_notifications(client, people):
    notify(people["me"], people["task"], read=True)
    response = sign_in(client, people["me"]).get(reverse("workspace:home"))
    assert header_count(response) == ""
    assert f'href="{INBOX}"' in response.content.decode()


def test_the_header_count_is_the_same_query_for_0_and_30_unread(
    client, people, django_assert_num_queries
):
    me = people["me"]
    sign_in(client, me)
    with CaptureQueriesContext(connection) as queries:
        client.get(reverse("workspace:forums"))
    for _ in range(30):
        notify(me, people["task"])
    with django_assert_num_queries(len(queries)):
        response = client.get(reverse("workspace:forums"))
    assert header_count(response) == "30"


# --- Fixed query count ------------------------------------------------------------------------


def test_inbox_query_count_is_fixed_for_5_and_50(client, people, django_assert_num_queries):
    me, plan, firm = people["me"], people["plan"], people["firm"]
    other = OrganizationFactory()

    def add(n):
        for i in range(n):  # every third task is another firm's: shown without a link
            task = TaskFactory(plan=plan, lead_organization=firm if i % 3 else other)
            notify(me, task, read=bool(i % 2))

    sign_in(client, me)
    add(5)
    with CaptureQueriesContext(connection) as queries:
        client.get(INBOX)
    add(45)
    with django_assert_num_queries(len(queries)):
        response = client.get(INBOX)
    html = response.content.decode()
    assert html.count('id="notification-') == 50
    assert text(response).count("A task you can no longer see") == 2 + 15


def test_the_inbox_pages_by_fifty_and_marking_read_keeps_the_page(client, people):
    me = people["me"]
    notes = [notify(me, people["task"], minutes_ago=i) for i in range(55)]  # newest first
    sign_in(client, me)
    second = client.get(INBOX + "?page=2")
    assert second.content.decode().count('id="notification-') == 5
    assert "Page 2 of 2" in text(second)
    oldest = notes[-1]
    assert f"notification-{oldest.pk}" in second.content.decode()
    response = client.post(read_url(oldest), {"page": "2"})
    assert response["Location"] == INBOX + "?page=2"
    swapped = client.post(read_url(notes[-2]), {"page": "2"}, **HTMX)
    assert swapped.content.decode().count('id="notification-') == 5
    assert header_count(swapped) == "53"
    assert client.get(INBOX + "?page=x").status_code == 200  # a bad page is the first one
