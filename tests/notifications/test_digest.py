"""The daily digest: created once per opted-in user and local day at 08:00 in the user's zone
(Seoul, New York, across the US daylight-saving change), emailed once with only the tasks the
user may see, in their language and zone; empty ones recorded, failures retried."""

import datetime as dt
import smtplib

import pytest
import time_machine
from django.conf import settings as django_settings
from django.core.mail.backends.locmem import EmailBackend
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from notifications import emails, services
from notifications.models import Digest, ReminderPolicy
from notifications.tasks import deliver_digest_task, deliver_digests_task, sweep_digests_task
from plans.models import Task
from tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    PlanFactory,
    TaskFactory,
    UserFactory,
)
from tests.notifications import reminders_world as w
from tests.notifications.reminders_world import DUE, NEW_YORK, SEOUL, UTC, local
from tracker.models import Membership

pytestmark = pytest.mark.django_db

Status = Digest.Status
# Three days before the world's task is due; 08:00 in Seoul.
DAY = DUE - dt.timedelta(days=3)
MOMENT = local(DAY, SEOUL, hour=8)


def opt_in(*users, digest=True):
    for user in users:
        services.notification_preferences_update(actor=user, user=user, digest=digest)
    return users


def sweep(moment, **kwargs):
    with time_machine.travel(moment, tick=False):
        return services.digests_sweep(enqueue=False, **kwargs)


def deliver(digest, moment=None, **kwargs):
    moment = moment or digest.created_at + dt.timedelta(minutes=1)
    with time_machine.travel(moment, tick=False):
        return services.digest_deliver(digest_id=digest.pk, **kwargs)


def rows():
    return sorted((d.user.username, d.day) for d in Digest.objects.select_related("user"))


@pytest.fixture
def enqueued(monkeypatch):
    calls = []

    def apply_async(args=None, kwargs=None, countdown=None, queue=None, **options):
        calls.extend((pk, countdown, queue) for pk in args[0])  # one message per batch

    monkeypatch.setattr(deliver_digests_task, "apply_async", apply_async)
    return calls


@pytest.fixture
def world(settings):
    settings.SITE_URL = "https://tracker.example.org"
    return w.build()


# --- When ---------------------------------------------------------------------------------


def test_seoul_digest_falls_due_at_eight_local_time(db):
    (user,) = opt_in(UserFactory(time_zone="Asia/Seoul"))
    # 07:59:59 in Seoul is still the previous day in UTC: nothing yet, and not yesterday's.
    assert sweep(local(DAY, SEOUL, 7, 59, 59)).created == 0
    assert rows() == []
    result = sweep(local(DAY, SEOUL, 8))
    assert result.created == 1
    digest = Digest.objects.get()
    assert (digest.user, digest.day, digest.status) == (user, DAY, Status.PENDING)
    assert digest.due_at == local(DAY, SEOUL, 8).astimezone(UTC)
    # Later the same day: still the one digest.
    assert sweep(local(DAY, SEOUL, 23, 59)).created == 0
    assert sweep(local(DAY + dt.timedelta(days=1), SEOUL, 8)).created == 1
    assert rows() == [(user.username, DAY), (user.username, DAY + dt.timedelta(days=1))]


def test_new_york_digest_falls_due_at_eight_local_time(db):
    (user,) = opt_in(UserFactory(time_zone="America/New_York"))
    assert sweep(local(DAY, NEW_YORK, 7, 59)).created == 0
    assert sweep(local(DAY, NEW_YORK, 8)).created == 1
    assert rows() == [(user.username, DAY)]


def test_across_the_us_daylight_saving_change(db):
    """2026-11-01: New York falls back from EDT (UTC-4) to EST (UTC-5) at 02:00, so 08:00 is
    12:00 UTC on 31 October and 13:00 UTC on 1 November."""
    (user,) = opt_in(UserFactory(time_zone="America/New_York"))
    saturday, sunday = dt.date(2026, 10, 31), dt.date(2026, 11, 1)
    assert sweep(dt.datetime(2026, 10, 31, 11, 59, tzinfo=UTC)).created == 0
    assert sweep(dt.datetime(2026, 10, 31, 12, 0, tzinfo=UTC)).created == 1
    # 12:30 UTC on Sunday would be 08:30 under the summer offset; it is 07:30 EST.
    assert sweep(dt.datetime(2026, 11, 1, 12, 30, tzinfo=UTC)).created == 0
    assert sweep(dt.datetime(2026, 11, 1, 12, 59, 59, tzinfo=UTC)).created == 0
    assert sweep(dt.datetime(2026, 11, 1, 13, 0, tzinfo=UTC)).created == 1
    assert rows() == [(user.username, saturday), (user.username, sunday)]
    assert Digest.objects.get(day=sunday).due_at == dt.datetime(2026, 11, 1, 13, tzinfo=UTC)
    assert Digest.objects.get(day=saturday).due_at == dt.datetime(2026, 10, 31, 12, tzinfo=UTC)


def test_one_sweep_serves_each_zone_its_own_day(db):
    seoul, new_york = opt_in(
        UserFactory(time_zone="Asia/Seoul"), UserFactory(time_zone="America/New_York")
    )
    # 08:00 in New York on DAY is 22:00 in Seoul on DAY: both have today's digest due.
    sweep(local(DAY, NEW_YORK, 8))
    assert rows() == sorted([(seoul.username, DAY), (new_york.username, DAY)])
    # 08:00 in Seoul on the next day is 19:00 on DAY in New York: only Seoul's new day.
    sweep(local(DAY + dt.timedelta(days=1), SEOUL, 8))
    assert len(rows()) == 3 and (seoul.username, DAY + dt.timedelta(days=1)) in rows()


def test_only_opted_in_active_people_with_an_address(db):
    (wanted,) = opt_in(UserFactory())
    opt_in(UserFactory(), digest=False)
    UserFactory()  # no preferences: no digest
    opt_in(UserFactory(email=""))
    inactive = UserFactory()
    opt_in(inactive)
    inactive.is_active = False
    inactive.save()
    sweep(MOMENT)
    assert rows() == [(wanted.username, DAY)]


def test_whole_day_treats_eight_as_passed(db):
    (user,) = opt_in(UserFactory(time_zone="America/New_York"))
    early = local(DAY, NEW_YORK, 0, 5)
    assert sweep(early).created == 0
    assert sweep(early, whole_day=True).created == 1
    assert rows() == [(user.username, DAY)]


# --- Exactly once ---------------------------------------------------------------------------


def test_sweeping_twice_makes_the_same_rows_and_enqueues_once(
    db, enqueued, settings, django_capture_on_commit_callbacks
):
    settings.NOTIFICATION_QUEUE = "digests-test"
    settings.DELIVERY_REQUEUE_AFTER_SECONDS = 90  # the second sweep comes before that
    opt_in(UserFactory(), UserFactory(time_zone="America/New_York"))
    with (
        time_machine.travel(local(DAY, NEW_YORK, 9), tick=False),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        first = services.digests_sweep()
        assert enqueued == []  # only after commit
    assert len(callbacks) == 1
    assert first.created == 2
    assert sorted(call[0] for call in enqueued) == sorted(first.digest_ids)
    assert {call[2] for call in enqueued} == {"digests-test"}
    before = list(Digest.objects.order_by("pk").values_list("pk", "user_id", "day"))
    enqueued.clear()
    with (
        # A minute later: inside DELIVERY_REQUEUE_AFTER_SECONDS, so nothing counts as lost.
        time_machine.travel(local(DAY, NEW_YORK, 9, 1), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert sweep_digests_task.run() == 0
    assert enqueued == []
    assert list(Digest.objects.order_by("pk").values_list("pk", "user_id", "day")) == before


def test_the_unique_key_stops_a_duplicate(db):
    from django.db import IntegrityError, transaction

    opt_in(UserFactory())
    sweep(MOMENT)
    row = Digest.objects.get()
    row.pk = None
    with pytest.raises(IntegrityError), transaction.atomic():
        row.save()


def test_a_lost_message_is_enqueued_again_by_the_sweep(
    db, enqueued, django_capture_on_commit_callbacks
):
    opt_in(UserFactory())
    sweep(MOMENT)  # enqueue=False: as if the broker had been down at commit
    digest = Digest.objects.get()
    with (
        time_machine.travel(MOMENT + dt.timedelta(minutes=11), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        result = services.digests_sweep()
    assert (result.created, result.requeued) == (0, 1)
    assert [call[0] for call in enqueued] == [digest.pk]


def _users(count: int):
    for index in range(count):
        zone = ("Asia/Seoul", "America/New_York", "Europe/Berlin")[index % 3]
        opt_in(UserFactory(time_zone=zone))


def _sweep_queries(moment) -> tuple[int, int]:
    Digest.objects.all().delete()
    with time_machine.travel(moment, tick=False), CaptureQueriesContext(connection) as ctx:
        result = services.digests_sweep(enqueue=True)
    return len(ctx.captured_queries), result.created


def test_the_sweep_takes_the_same_queries_for_5_and_30_users(db, enqueued):
    moment = dt.datetime(2026, 3, 9, 14, tzinfo=UTC)  # 08:00 or later in all three zones
    _users(5)
    queries_5, created_5 = _sweep_queries(moment)
    _users(25)
    queries_30, created_30 = _sweep_queries(moment)
    assert (created_5, created_30) == (5, 30)
    assert queries_5 == queries_30
    # And with every digest already there: no insert, no more queries.
    with time_machine.travel(moment, tick=False), CaptureQueriesContext(connection) as ctx:
        assert services.digests_sweep().created == 0
    assert len(ctx.captured_queries) <= queries_30


def test_beat_runs_the_digest_sweep():
    entry = django_settings.CELERY_BEAT_SCHEDULE["notifications.sweep_digests"]
    assert entry["task"] == sweep_digests_task.name == "notifications.sweep_digests"
    assert entry["schedule"] == float(django_settings.REMINDER_SWEEP_SECONDS)
    # The earlier blocks' entries are kept (merged, not replaced).
    assert "notifications.sweep_reminders" in django_settings.CELERY_BEAT_SCHEDULE
    assert deliver_digest_task.name == "notifications.deliver_digest"


# --- Delivery ---------------------------------------------------------------------------------


def swept(world, *users) -> dict:
    opt_in(*users)
    sweep(MOMENT, whole_day=True)
    return {d.user_id: d for d in Digest.objects.all()}


def test_delivering_twice_sends_one_email(world, mailoutbox):
    digest = swept(world, world.seoul)[world.seoul.pk]
    assert deliver(digest).sent
    assert deliver(digest) is None
    deliver_digest_task.run(digest.pk)  # the task: returns quietly
    deliver_digest_task.run(10**9)  # gone
    assert len(mailoutbox) == 1
    digest.refresh_from_db()
    assert digest.status == Status.SENT and digest.attempts == 1 and digest.task_count == 1
    assert digest.email_sent_at is not None and digest.next_attempt_at is None


def test_english_digest_with_links_deadlines_in_the_users_zone_and_stable_message_id(
    world, mailoutbox
):
    digest = swept(world, world.new_york)[world.new_york.pk]
    deliver(digest)
    (message,) = mailoutbox
    assert message.to == [world.new_york.email]
    # 08:00 in Seoul is the evening before in New York: the digest of New York's day.
    assert digest.day == DAY - dt.timedelta(days=1)
    day = digest.day.isoformat()
    assert message.subject == f"Daily digest for {day}: 1 task(s) to look at"
    key = f"digest:{world.new_york.pk}:{day}"
    assert digest.dedupe_key == key
    assert message.extra_headers["Message-ID"] == emails.message_id(key)
    assert message.extra_headers["Content-Language"] == "en"
    task_url = f"https://tracker.example.org/admin/plans/task/{world.task.pk}/change/"
    assert "Due soon (1)" in message.body
    assert f"[{world.task.ref}] {world.task.title} ({world.plan.code})" in message.body
    assert task_url in message.body
    # Due 10 March in a Seoul plan: the deadline is midnight in Seoul, 11:00 in New York
    # (summer time there since 8 March).
    assert "due 2026-03-10 (deadline 2026-03-10 11:00)" in message.body
    assert "times in America/New_York" in message.body
    assert "Overdue" not in message.body and "awaiting" not in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and f'href="{task_url}"' in html
    assert '<html lang="en">' in html
    preferences = reverse("admin:notifications_mynotificationpreference_changelist")
    assert f"https://tracker.example.org{preferences}" in message.body


def test_korean_digest_for_a_korean_user(world, mailoutbox):
    digest = swept(world, world.seoul)[world.seoul.pk]
    deliver(digest)
    (message,) = mailoutbox
    assert message.subject == f"{DAY.isoformat()} 일일 요약: 확인할 과제 1건"
    assert message.body.startswith(f"{world.seoul.get_full_name()} 님,")
    assert "마감이 다가오는 과제 (1)" in message.body
    assert "마감일 2026-03-10 (마감 시각 2026-03-11 00:00)" in message.body
    assert "Dear" not in message.body and "Due soon" not in message.body
    html, _ = message.alternatives[0]
    assert '<html lang="ko">' in html and "마감이 다가오는 과제" in html
    assert message.extra_headers["Content-Language"] == "ko"


def _other_task(world, **kwargs):
    other = OrganizationFactory()
    return TaskFactory(plan=world.plan, lead_organization=other, at=w.CREATED, **kwargs)


def _content(user, moment=MOMENT):
    day = moment.astimezone(SEOUL).date()
    with time_machine.travel(moment, tick=False):
        return services.digest_content(user=user, day=day, now=moment)


def refs(tasks):
    return sorted(task.ref for task in tasks)


def test_only_tasks_the_user_may_see(world):
    hidden = _other_task(world, due_date=DUE)
    assert refs(_content(world.seoul).due_soon) == [world.task.ref]
    # Granted sight (their organization supports it): now it is theirs too.
    hidden.supporting_organizations.add(world.lead)
    assert refs(_content(world.seoul).due_soon) == sorted([world.task.ref, hidden.ref])


def test_a_plan_wide_task_of_another_organization_is_not_theirs(world):
    _other_task(world, due_date=DUE, visibility=Task.Visibility.PLAN)
    assert refs(_content(world.seoul).due_soon) == [world.task.ref]


def test_due_soon_overdue_and_the_horizon(world):
    late = TaskFactory(
        plan=world.plan, lead_organization=world.lead, due_date=DAY - dt.timedelta(days=2),
        at=w.CREATED,
    )  # fmt: skip
    in_ten = TaskFactory(
        plan=world.plan, lead_organization=world.lead, due_date=DAY + dt.timedelta(days=10),
        at=w.CREATED,
    )  # fmt: skip
    TaskFactory(
        plan=world.plan, lead_organization=world.lead, due_date=DAY + dt.timedelta(days=30),
        at=w.CREATED,
    )  # fmt: skip
    TaskFactory(
        plan=world.plan, lead_organization=world.lead, due_date=DAY - dt.timedelta(days=5),
        at=w.CREATED, status=Task.Status.DONE,
    )  # fmt: skip
    content = _content(world.seoul)
    assert refs(content.overdue) == [late.ref]
    # The default policy reminds 14 days ahead: the horizon is 14 days, not 7.
    assert refs(content.due_soon) == sorted([world.task.ref, in_ten.ref])
    assert content.awaiting_verification == []  # not a coordinator
    ReminderPolicy.objects.create(plan=world.plan, before_days=[3, 0])
    assert refs(_content(world.seoul).due_soon) == [world.task.ref]  # 7 days
    ReminderPolicy.objects.filter(plan=world.plan).update(before_days=[10, 0])
    assert refs(_content(world.seoul).due_soon) == sorted([world.task.ref, in_ten.ref])


def test_coordinators_get_the_tasks_awaiting_verification_of_their_plans(world, mailoutbox):
    done = TaskFactory(
        plan=world.plan, lead_organization=world.lead, due_date=DUE, at=w.CREATED,
        status=Task.Status.DONE,
    )  # fmt: skip
    TaskFactory(
        plan=world.plan, lead_organization=world.lead, due_date=DUE, at=w.CREATED,
        status=Task.Status.VERIFIED,
    )  # fmt: skip
    # A done task of a plan someone else coordinates.
    elsewhere = OrganizationFactory()
    other_plan = PlanFactory(coordinating=[elsewhere], members=[world.lead])
    TaskFactory(
        plan=other_plan, lead_organization=world.lead, due_date=DUE, at=w.CREATED,
        status=Task.Status.DONE,
    )  # fmt: skip
    content = _content(world.coordinator)
    assert refs(content.awaiting_verification) == [done.ref]
    assert content.due_soon == [] and content.overdue == []
    # Contributors of the lead organization see the done tasks but do not verify them.
    assert _content(world.seoul).awaiting_verification == []
    # A coordinator of the other plan gets only that plan's.
    other_coordinator = MembershipFactory(
        organization=elsewhere, role=Membership.Role.COORDINATOR
    ).user
    assert [t.plan_id for t in _content(other_coordinator).awaiting_verification] == [other_plan.pk]

    digest = swept(world, world.coordinator)[world.coordinator.pk]
    deliver(digest)
    (message,) = mailoutbox
    assert "Done, awaiting your verification (plans you coordinate) (1)" in message.body
    assert f"[{done.ref}]" in message.body


def test_an_empty_digest_is_recorded_not_emailed(world, mailoutbox):
    loner = MembershipFactory(organization=OrganizationFactory()).user
    digest = swept(world, loner)[loner.pk]
    result = deliver(digest)
    assert result.status == Status.EMPTY and not result.sent
    assert mailoutbox == []
    digest.refresh_from_db()
    assert digest.status == Status.EMPTY and digest.task_count == 0
    assert digest.next_attempt_at is None and digest.email_sent_at is None
    assert deliver(digest) is None


def test_switched_off_after_the_sweep_is_not_sent(world, mailoutbox):
    digest = swept(world, world.seoul)[world.seoul.pk]
    opt_in(world.seoul, digest=False)
    result = deliver(digest)
    assert result.status == Status.NOT_SENT and result.reason == services.DIGEST_SWITCHED_OFF
    assert mailoutbox == []


def test_a_transient_smtp_error_is_retried_with_backoff(
    world, monkeypatch, enqueued, mailoutbox, django_capture_on_commit_callbacks
):
    digest = swept(world, world.seoul)[world.seoul.pk]

    def fail(self, messages):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")

    monkeypatch.setattr(EmailBackend, "send_messages", fail)
    moment = MOMENT + dt.timedelta(minutes=1)
    with django_capture_on_commit_callbacks(execute=True):
        result = deliver(digest, moment)
    assert result.retry_in == services.REMINDER_RETRY_BASE_SECONDS
    assert enqueued == [(digest.pk, 60, "email")]
    digest.refresh_from_db()
    assert digest.status == Status.PENDING and digest.attempts == 1
    assert "SMTPServerDisconnected" in digest.failure_reason
    assert digest.next_attempt_at == moment + dt.timedelta(seconds=60)
    assert deliver(digest, moment + dt.timedelta(seconds=30)) is None  # not yet due
    monkeypatch.undo()
    assert deliver(digest, moment + dt.timedelta(minutes=2)).sent
    assert len(mailoutbox) == 1
    digest.refresh_from_db()
    assert digest.attempts == 2 and digest.failure_reason == ""


def test_a_permanent_refusal_is_recorded(world, monkeypatch, mailoutbox):
    digest = swept(world, world.seoul)[world.seoul.pk]

    def refuse(self, messages):
        raise smtplib.SMTPRecipientsRefused({world.seoul.email: (550, b"No such user")})

    monkeypatch.setattr(EmailBackend, "send_messages", refuse)
    result = deliver(digest)
    assert result.status == Status.NOT_SENT and "550" in result.reason
    digest.refresh_from_db()
    assert digest.status == Status.NOT_SENT and digest.email_failed_at is not None
    assert digest.failure_reason.startswith("Refused by the mail server")


def test_gives_up_after_the_last_attempt(world, monkeypatch, settings, mailoutbox):
    settings.REMINDER_MAX_ATTEMPTS = 2
    digest = swept(world, world.seoul)[world.seoul.pk]

    def fail(self, messages):
        raise ConnectionRefusedError("Connection refused")

    monkeypatch.setattr(EmailBackend, "send_messages", fail)
    assert deliver(digest, MOMENT + dt.timedelta(minutes=1), schedule_retry=False).retry_in
    result = deliver(digest, MOMENT + dt.timedelta(minutes=5), schedule_retry=False)
    assert result.status == Status.NOT_SENT
    assert result.reason.startswith("Gave up after 2 attempts")


def test_a_lease_keeps_a_second_worker_off(world, settings, mailoutbox):
    digest = swept(world, world.seoul)[world.seoul.pk]
    moment = MOMENT + dt.timedelta(minutes=1)
    with time_machine.travel(moment, tick=False):
        claim = services._digest_claim(digest.pk)
        # Held by the first attempt (its worker is sending): nothing for a second one.
        assert services.digest_deliver(digest_id=digest.pk) is None
    digest.refresh_from_db()
    lease = dt.timedelta(seconds=settings.REMINDER_LEASE_SECONDS)
    assert digest.next_attempt_at == moment + lease
    assert claim.attempts == digest.attempts == 1


def test_an_attempt_whose_lease_ran_out_stamps_nothing(world, settings, mailoutbox):
    digest = swept(world, world.seoul)[world.seoul.pk]
    lease = dt.timedelta(seconds=settings.REMINDER_LEASE_SECONDS)
    moment = MOMENT + dt.timedelta(minutes=1)
    with time_machine.travel(moment, tick=False):
        stale = services._digest_claim(digest.pk)  # this worker then hangs past its lease
    later = moment + lease + dt.timedelta(seconds=10)
    assert deliver(digest, later).sent  # a second attempt takes it over and sends it
    with time_machine.travel(later + dt.timedelta(seconds=1), tick=False):
        outcome = services._DigestOutcome(Status.PENDING, 1, "SMTPServerDisconnected: late")
        result = services._digest_stamp(stale, outcome, schedule_retry=False)
    assert result.status == Status.SENT
    digest.refresh_from_db()
    assert (digest.status, digest.attempts, digest.failure_reason) == (Status.SENT, 2, "")
    assert len(mailoutbox) == 1


@pytest.mark.django_db(transaction=True)
def test_the_content_is_computed_and_sent_with_no_transaction_open(world, monkeypatch, settings):
    settings.REMINDER_LEASE_SECONDS = 120
    digest = swept(world, world.seoul)[world.seoul.pk]
    seen = []
    send = EmailBackend.send_messages

    def spy(self, messages):
        row = Digest.objects.get(pk=digest.pk)  # what other workers see
        seen.append((connection.in_atomic_block, row.status, row.attempts, row.next_attempt_at))
        return send(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", spy)
    moment = MOMENT + dt.timedelta(minutes=1)
    assert deliver(digest, moment).sent
    assert seen == [(False, Status.PENDING, 1, moment + dt.timedelta(seconds=120))]


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_concurrent_sweeps_create_each_digest_once():
    """Four sweeps at the same instant on PostgreSQL: the unique (user, day) and ON CONFLICT
    DO NOTHING leave one digest per user, each counted by exactly one sweep."""
    import threading

    _users(12)
    moment = dt.datetime(2026, 3, 9, 14, tzinfo=UTC)
    barrier = threading.Barrier(4)
    results, errors = [], []

    def run():
        try:
            barrier.wait(timeout=30)
            results.append(services.digests_sweep(now=moment, enqueue=False))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert Digest.objects.count() == 12
    assert sum(result.created for result in results) == 12
    assert sorted(i for result in results for i in result.digest_ids) == sorted(
        Digest.objects.values_list("pk", flat=True)
    )
