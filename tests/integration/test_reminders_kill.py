"""A worker killed in the middle of reminder delivery loses nothing and sends nothing twice.

200 reminders are due; a real `celery worker` (Redis broker, PostgreSQL) sends them to a local
SMTP server. While the worker is inside the SMTP exchange of message 61, before the server has
answered 250, the test SIGKILLs the worker's whole process group (no shutdown, no ack). The
kill is deterministic, not timed: the server holds that one exchange open until the client is
gone, and a message counts as received only when the server answers 250 (aiosmtpd cancels the
handler of a vanished client, so the cut message is never recorded).

The sweep enqueued the 200 ids as one batch message; the worker claimed the batch in one
statement (each row leased, attempt 1) and mails it over one SMTP connection, stamping each
row right after its 250. At the kill 60 messages were received and their rows stamped, and
the other 140 rows (the cut one among them) are leased to the dead worker: nobody claims
them before the lease runs out. The worker is then started again; its broker redelivers the
dead worker's unacknowledged message (visibility timeout), the lease has run out, and the
140 rows are claimed and sent once more. The lease and the visibility timeout are shortened for the
test through the same environment variables production reads (REMINDER_LEASE_SECONDS,
CELERY_VISIBILITY_TIMEOUT). In the end every expected Message-ID arrived exactly once and all
200 rows are stamped sent.

The one window no design closes: the SMTP server accepted a message (250) and the worker died
before its stamp committed. That message is sent once more after the lease, with the same
Message-ID, so the receiving side can discard the repeat. This test kills before the 250, so
it expects exactly once.
"""

import datetime as dt
import re
import time
from collections import Counter

import pytest
import time_machine

from notifications import emails, services
from notifications.models import Notification
from tests.factories import TaskFactory
from tests.integration.conftest import Worker, wait_for
from tests.notifications import reminders_world as w
from tests.notifications.reminders_world import CREATED, DUE, NEW_YORK, local

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TOTAL = 200  # 100 tasks, two recipients each
ACCEPTED_BEFORE_KILL = 60
# Short for the test (production: 300 and 3600). The visibility timeout is longer than the
# lease, as in production, so the redelivered message finds the lease run out. A batch
# starts sends during the first half of a lease this short (notifications.outbox
# .send_deadline): 15 s, ample for the 61 exchanges before the kill even on a loaded machine.
LEASE_SECONDS = 30
VISIBILITY_TIMEOUT = 32


def task_ids(log: str, state: str) -> set[str]:
    return set(re.findall(rf"notifications\.deliver_notifications\[([0-9a-f-]+)\] {state}", log))


def test_a_worker_killed_mid_delivery_sends_each_reminder_exactly_once(reminder_queue, smtp_server):
    inbox, _port = smtp_server
    inbox.delay = 0.01  # a slow server: every exchange takes a moment
    inbox.hold_at = ACCEPTED_BEFORE_KILL
    world = w.build()
    for _ in range(TOTAL // 2 - 1):
        TaskFactory(
            plan=world.plan,
            lead_organization=world.lead,
            due_date=DUE,
            assignee=world.seoul,
            manager=world.new_york,
            at=CREATED,
        )
    env = {"REMINDER_LEASE_SECONDS": str(LEASE_SECONDS)}
    first = Worker(queue=reminder_queue, env=env, name="first").start()
    try:
        result = services.reminders_sweep(now=local(DUE - dt.timedelta(days=1), NEW_YORK))
        assert result.created == TOTAL
        keys = Notification.objects.values_list("pk", "dedupe_key")
        by_message_id = {emails.message_id(key): pk for pk, key in keys}
        assert len(by_message_id) == TOTAL

        assert inbox.holding.wait(timeout=90), "no SMTP exchange was held:\n" + first.output()
        first.kill()  # inside the SMTP exchange of message 61
        killed_at = time.time()
    finally:
        first.stop()

    # The held exchange was cut before any 250: not received, not stamped, leased.
    assert wait_for(lambda: inbox.cut, timeout=10), "the held exchange was never cut"
    (cut_id,) = inbox.cut
    received = inbox.message_ids()
    assert len(received) == len(set(received)) == ACCEPTED_BEFORE_KILL
    assert cut_id not in received
    sent = Notification.objects.filter(email_sent_at__isnull=False)
    assert {by_message_id[m] for m in received} == set(sent.values_list("pk", flat=True))
    cut = Notification.objects.get(pk=by_message_id[cut_id])
    assert cut.email_sent_at is None and cut.email_failed_at is None and cut.attempts == 1
    # Claimed with its batch before the first DATA, leased for LEASE_SECONDS from then, as
    # is every unsent row of the batch; all came over one SMTP connection.
    lease_end = cut.next_attempt_at
    claimed_at = lease_end.timestamp() - LEASE_SECONDS
    assert claimed_at <= inbox.accepted_at[0]
    assert len(set(inbox.peers)) == 1
    # At the moment of the kill, another claimer gets nothing (the test process, its clock
    # frozen there; it would send through the locmem backend).
    with time_machine.travel(killed_at, tick=False):
        assert services.notification_deliver(notification_id=cut.pk) is None
    unsent = Notification.objects.filter(email_sent_at__isnull=True)
    assert unsent.count() == TOTAL - ACCEPTED_BEFORE_KILL
    assert set(unsent.values_list("attempts", "next_attempt_at")) == {(1, lease_end)}
    first_sent = set(sent.values_list("pk", flat=True))

    # Start again once the lease has run out and the broker would hand the dead worker's
    # unacknowledged message to a new one (it does so when it starts).
    ready = max((lease_end - services.CLOCK_SLACK).timestamp(), killed_at + VISIBILITY_TIMEOUT)
    time.sleep(max(0.0, ready + 0.5 - time.time()))
    env["CELERY_VISIBILITY_TIMEOUT"] = str(VISIBILITY_TIMEOUT)
    second = Worker(queue=reminder_queue, env=env, name="second").start()
    try:
        done = wait_for(
            lambda: Notification.objects.filter(email_sent_at__isnull=False).count() == TOTAL,
            timeout=60,
        )
        assert done, "not all were sent:\n" + second.output()
        wait_for(lambda: len(inbox.message_ids()) > TOTAL, timeout=1)  # any repeat, late
    finally:
        second.stop()

    # The messages the dead worker had taken were redelivered to the new one by the broker.
    first_log, second_log = first.output(), second.output()
    unfinished = task_ids(first_log, "received") - task_ids(first_log, "succeeded")
    assert unfinished and unfinished <= task_ids(second_log, "succeeded"), second_log

    counts = Counter(inbox.message_ids())
    assert set(counts) == set(by_message_id)
    assert [m for m, n in counts.items() if n != 1] == []
    assert Notification.objects.filter(email_failed_at__isnull=False).count() == 0
    cut.refresh_from_db()
    assert cut.attempts == 2 and cut.email_sent_at is not None
    rows = Notification.objects.all()
    assert set(rows.filter(pk__in=first_sent).values_list("attempts", flat=True)) == {1}
    assert set(rows.exclude(pk__in=first_sent).values_list("attempts", flat=True)) == {2}
