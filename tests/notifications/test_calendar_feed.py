"""Calendar feeds: a person's task deadlines as iCalendar at a secret URL, listing exactly the
tasks they can see, in a fixed number of queries; the secret is kept only as a keyed hash."""

import datetime as dt
from urllib.parse import urlsplit

import icalendar
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from notifications import calendar
from notifications.models import CalendarFeed
from plans.exceptions import NotAllowed
from plans.models import Task
from tests.factories import MembershipFactory, OrganizationFactory, TaskFactory, UserFactory
from tests.notifications import reminders_world as w
from tracker import tokens

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return w.build()


def fetch(url: str):
    return Client().get(urlsplit(url).path)


def parse(response) -> icalendar.Calendar:
    assert response.status_code == 200, response.content
    return icalendar.Calendar.from_ical(response.content)


def events(cal: icalendar.Calendar) -> dict[str, icalendar.Event]:
    return {str(event["uid"]): event for event in cal.walk("VEVENT")}


def uid(task) -> str:
    return f"task-{task.pk}@{urlsplit(settings.SITE_URL).hostname}"


def test_feed_lists_the_tasks_the_user_sees_as_all_day_events(world):
    hidden = TaskFactory(title="Secret hidden task")  # another plan, another organization
    cancelled = TaskFactory(
        plan=world.plan, lead_organization=world.lead, status=Task.Status.CANCELLED
    )
    _feed, url = calendar.calendar_feed_rotate(actor=world.seoul, user=world.seoul)

    response = fetch(url)

    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert response["Content-Disposition"] == 'inline; filename="tasks.ics"'
    assert response["Cache-Control"] == "private, max-age=300"
    cal = parse(response)
    assert str(cal["version"]) == "2.0"
    assert str(cal["calscale"]) == "GREGORIAN"
    assert str(cal["prodid"]) == calendar.PRODID
    assert "X-WR-CALNAME" in cal
    found = events(cal)
    assert set(found) == {uid(world.task), uid(cancelled)}
    assert b"Secret hidden task" not in response.content
    assert uid(hidden) not in found

    event = found[uid(world.task)]
    assert event.decoded("dtstart") == w.DUE
    assert event.decoded("dtend") == w.DUE + dt.timedelta(days=1)
    assert event["dtstart"].params["VALUE"] == "DATE"
    assert event["dtend"].params["VALUE"] == "DATE"
    assert str(event["summary"]) == f"[{world.task.ref}] {world.task.title}"
    description = str(event["description"])
    assert world.plan.code in description
    assert world.lead.name in description
    # In the feed owner's language (Korean for world.seoul), labels and status alike.
    assert world.seoul.language == "ko"
    assert "상태: 계획\n" in description
    assert "Status" not in description and "Planned" not in description
    assert reverse("admin:plans_task_change", args=[world.task.pk]) in description
    assert event.decoded("last-modified") == world.task.updated_at.replace(microsecond=0)
    assert str(event["status"]) == "CONFIRMED"
    assert str(found[uid(cancelled)]["status"]) == "CANCELLED"
    assert found[uid(cancelled)]["categories"].cats == ["취소"]  # the status, in Korean

    # The coordinator of the plan sees both; the feed is theirs, not the contributor's.
    _feed, coordinator_url = calendar.calendar_feed_rotate(
        actor=world.coordinator, user=world.coordinator
    )
    assert set(events(parse(fetch(coordinator_url)))) == {uid(world.task), uid(cancelled)}

    feed = CalendarFeed.objects.get(user=world.seoul)
    assert feed.last_fetched_at is not None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda key: key[:-1] + ("A" if key[-1] != "A" else "B"),  # wrong secret
        lambda key: "Zz" + key[2:],  # unknown prefix
        lambda key: key + "x",  # malformed
        lambda key: "nonsense",
    ],
)
def test_wrong_or_unknown_key_is_404(world, mangle):
    _feed, url = calendar.calendar_feed_rotate(actor=world.seoul, user=world.seoul)
    key = urlsplit(url).path.removeprefix("/calendar/").removesuffix(".ics")
    assert fetch(url).status_code == 200  # the right key works
    assert Client().get(f"/calendar/{mangle(key)}.ics").status_code == 404


def test_inactive_user_is_404(world):
    _feed, url = calendar.calendar_feed_rotate(actor=world.seoul, user=world.seoul)
    assert fetch(url).status_code == 200
    world.seoul.is_active = False
    world.seoul.save(update_fields=["is_active"])
    assert fetch(url).status_code == 404


def test_rotation_invalidates_the_old_url(world):
    feed, old_url = calendar.calendar_feed_rotate(actor=world.seoul, user=world.seoul)
    assert fetch(old_url).status_code == 200
    rotated, new_url = calendar.calendar_feed_rotate(actor=world.seoul, user=world.seoul)
    assert rotated.pk == feed.pk and rotated.rotated_at is not None
    assert new_url != old_url
    assert fetch(old_url).status_code == 404
    assert fetch(new_url).status_code == 200
    assert CalendarFeed.objects.count() == 1


def test_secret_is_stored_only_as_a_keyed_hash(world):
    feed, url = calendar.calendar_feed_rotate(actor=world.seoul, user=world.seoul)
    key = urlsplit(url).path.removeprefix("/calendar/").removesuffix(".ics")
    prefix, secret = key.split("_", 1)
    feed.refresh_from_db()
    assert feed.prefix == prefix
    assert feed.secret_hash == tokens.hash_secret(secret)
    stored = " ".join(str(value) for value in CalendarFeed.objects.values().get().values())
    assert secret not in stored


def test_only_the_user_or_a_superuser_rotates(world):
    with pytest.raises(NotAllowed):
        calendar.calendar_feed_rotate(actor=world.coordinator, user=world.seoul)
    assert not CalendarFeed.objects.exists()
    superuser = UserFactory(is_superuser=True, is_staff=True)
    _feed, url = calendar.calendar_feed_rotate(actor=superuser, user=world.seoul)
    assert fetch(url).status_code == 200


def test_api_rotate_returns_a_working_url(world):
    client = APIClient()
    client.force_authenticate(world.seoul)
    response = client.post("/api/v1/calendar-feed/rotate/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    url = response.json()["url"]
    assert set(events(parse(fetch(url)))) == {uid(world.task)}

    again = client.post("/api/v1/calendar-feed/rotate/").json()["url"]
    assert fetch(url).status_code == 404 and fetch(again).status_code == 200
    assert APIClient().post("/api/v1/calendar-feed/rotate/").status_code in (401, 403)


def test_admin_creates_and_rotates_own_feed(world):
    world.seoul.is_staff = True
    world.seoul.save(update_fields=["is_staff"])
    other = MembershipFactory(organization=world.lead, user__is_staff=True).user
    calendar.calendar_feed_rotate(actor=other, user=other)
    client = Client()
    client.force_login(world.seoul)

    created = client.post(reverse("admin:notifications_calendarfeed_add"))
    assert created.status_code == 200
    url = created.context["pairs"][0][1]
    assert url in created.content.decode()
    assert fetch(url).status_code == 200

    changelist = client.get(reverse("admin:notifications_calendarfeed_changelist"))
    assert list(changelist.context["cl"].queryset) == [world.seoul.calendar_feed]

    mine = world.seoul.calendar_feed
    rotated = client.post(
        reverse("admin:notifications_calendarfeed_changelist"),
        {"action": "rotate_feed", "_selected_action": [mine.pk, other.calendar_feed.pk]},
    )
    assert rotated.status_code == 200
    pairs = rotated.context["pairs"]
    assert [feed.user for feed, _url in pairs] == [world.seoul]  # not someone else's
    assert fetch(url).status_code == 404
    assert fetch(pairs[0][1]).status_code == 200


def _feed_query_count(feed, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert fetch(url).status_code == 200
    return len(queries)


def test_feed_query_count_does_not_grow_with_tasks(world):
    supporting = OrganizationFactory()
    _feed, url = calendar.calendar_feed_rotate(actor=world.coordinator, user=world.coordinator)

    def add_tasks(count):
        for _ in range(count):
            TaskFactory(
                plan=world.plan, lead_organization=world.lead, supporting_organizations=[supporting]
            )

    add_tasks(4)  # 5 with the world's task
    few = _feed_query_count(_feed, url)
    assert len(events(parse(fetch(url)))) == 5
    add_tasks(25)
    many = _feed_query_count(_feed, url)
    assert len(events(parse(fetch(url)))) == 30
    assert many == few
