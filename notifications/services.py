"""The notifications services, one module per sub-domain, re-exported here so that callers
(admin, API, workspace, commands, tasks, tests) keep importing `notifications.services`:

- `notifications.outbox`: what every delivery shares (lease, batch claim, fenced stamp,
  retry with backoff, requeue of lost rows, one message per batch of ids);
- `notifications.webhooks`: subscriptions, events and webhook delivery;
- `notifications.reminders`: reminder policies, the sweep and its SQL, read state;
- `notifications.email_delivery`: reminder emails through the outbox;
- `notifications.digests`: the daily digest;
- `notifications.preferences`: notification preferences.

Only the requeue across all three kinds lives here.
"""

import datetime as dt
from dataclasses import dataclass

from django.db import transaction

from .digests import (  # noqa: F401
    DIGEST_DUE_WITHIN_DAYS,
    DIGEST_HOUR,
    DIGEST_NO_EMAIL_ADDRESS,
    DIGEST_OPEN_SQL,
    DIGEST_SWITCHED_OFF,
    DIGEST_USER_INACTIVE,
    DigestContent,
    DigestResult,
    DigestStatus,
    DigestSweepResult,
    _digest_claim,
    _digest_finish,
    _digest_send,
    _digest_stamp,
    _DigestClaim,
    _DigestOutcome,
    _digests_claim,
    _digests_lost,
    _enqueue_digests_on_commit,
    digest_content,
    digest_day,
    digest_deliver,
    digests_deliver_batch,
    digests_deliver_pending,
    digests_sweep,
    notifications_mark_all_read,
)
from .email_delivery import (  # noqa: F401
    EMAIL_TURNED_OFF,
    GAVE_UP,
    NO_EMAIL_ADDRESS,
    NOT_BUILT,
    NOTIFICATION_OPEN_SQL,
    REFUSED,
    REMINDER_REQUEUE_BATCH,
    REMINDER_RETRY_BASE_SECONDS,
    REMINDER_RETRY_MAX_SECONDS,
    USER_INACTIVE,
    DeliveryResult,
    EmailNotBuilt,
    Q_due,
    _deliver_over_one_connection,
    _enqueue_notifications_on_commit,
    _error_text,
    _Lease,
    _lease_lost,
    _mail_connection_open,
    _not_built,
    _notification_claim,
    _notification_finish,
    _notification_held,
    _notification_send,
    _notification_stamp,
    _notifications_claim,
    _notifications_give_back,
    _notifications_lost,
    _permanent,
    _requeue_lost,
    _send_email,
    notification_deliver,
    notifications_deliver_batch,
    notifications_deliver_pending,
    reminder_retry_delay,
)
from .outbox import (  # noqa: F401
    CLOCK_SLACK,
    DB_OUTAGE_ERRORS,
    LEASE_EXPIRED,
    STAMP_RETRY_FOR,
    WRITE_RETRY_FIRST_PAUSE,
    WRITE_RETRY_MAX_PAUSE,
    _now,
    _stamp_deadline,
    requeue_after,
    retry_db_write,
)
from .preferences import (  # noqa: F401
    PREFERENCE_EMAIL_FIELDS,
    PREFERENCE_FIELDS,
    PREFERENCE_NOT_BOOLEAN,
    PREFERENCE_UNKNOWN,
    PREFERENCE_USER_FIELDS,
    notification_preferences_get,
    notification_preferences_update,
)
from .reminders import (  # noqa: F401
    REMINDER_EVENTS,
    REMINDERS_INSERT_SQL,
    UNKNOWN_ZONE,
    SweepResult,
    _postgresql_zones,
    _reminder_candidates,
    _reminder_recipients,
    _reminders_insert_python,
    _reminders_insert_sql,
    _sweep_zones,
    _who,
    _zone_known,
    notification_mark_read,
    reminder_policy_for,
    reminder_policy_update,
    reminder_webhooks_record,
    reminders_due,
    reminders_sweep,
)
from .webhooks import (  # noqa: F401
    _UNSET,
    AUTO_DISABLED,
    CLAIM_LEASE,
    DISABLED_BY,
    NO_LONGER_VISIBLE,
    OPEN,
    REQUEUE_BATCH,
    RETRY_BASE_SECONDS,
    RETRY_MAX_SECONDS,
    ROTATION_GRACE,
    SECRET_UNREADABLE,
    SUBSCRIPTION_DISABLED,
    USER_AGENT,
    WEBHOOK_BATCH_MAX,
    Status,
    _Claim,
    _claim,
    _claims,
    _count_failure,
    _deactivate,
    _enqueue,
    _enqueue_on_commit,
    _event_payload,
    _finish_unsent,
    _iso,
    _lock,
    _new_delivery,
    _Outcome,
    _reactivate,
    _send,
    _stamp,
    organizations_seeing_task,
    retry_delay,
    webhook_deliver,
    webhook_deliveries_requeue,
    webhook_events_record,
    webhook_subscription_create,
    webhook_subscription_delete,
    webhook_subscription_enable,
    webhook_subscription_ping,
    webhook_subscription_rotate_secret,
    webhook_subscription_update,
    webhook_url_validate,
    webhooks_deliver_batch,
)


@dataclass(frozen=True)
class RequeueResult:
    notifications: int
    digests: int
    webhooks: int


def deliveries_requeue(*, now: dt.datetime | None = None) -> RequeueResult:
    """Enqueue again every reminder email, digest and webhook delivery whose message was lost
    (due for longer than DELIVERY_REQUEUE_AFTER_SECONDS). Beat runs it every
    DELIVERY_REQUEUE_EVERY_SECONDS on HOUSEKEEPING_QUEUE; a run that meets a database or
    broker outage fails and the next one catches up."""
    now = now or _now()
    with transaction.atomic():
        notification_ids = _notifications_lost(now)
        if notification_ids:
            _enqueue_notifications_on_commit(notification_ids)
        digest_ids = _digests_lost(now)
        if digest_ids:
            _enqueue_digests_on_commit(digest_ids)
    webhooks = webhook_deliveries_requeue(now=now)
    return RequeueResult(len(notification_ids), len(digest_ids), webhooks)
