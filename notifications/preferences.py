"""Notification preferences: which kinds a user gets by email, the daily digest, and the
language and time zone every notification uses."""

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy

from plans import permissions as policy
from tracker import services as tracker_services
from tracker.models import User

from .models import (
    NotificationKind,
    NotificationPreference,
)

logger = logging.getLogger(__name__)


#
# Preferences: what a person wants by email (their NotificationPreference row, created the
# first time they change something; until then every email and no digest) together with their
# language and time zone (on the user, written by tracker.services.user_update_preferences),
# read and changed in one place, by the person themself only.
#
# The digest: `digests_sweep` (beat, every REMINDER_SWEEP_SECONDS) creates one Digest per
# opted-in user and local day once 08:00 has passed in the user's zone, in a fixed number of
# queries (users grouped by zone, each zone's day computed in Python); (user, day) is unique,
# so however often or concurrently it runs a digest exists once. `digest_deliver` follows the
# webhooks' and reminders' pattern: claim (row lock, skip locked; attempts += 1 and a lease of
# REMINDER_LEASE_SECONDS) -> commit -> compute the content and send, no transaction open ->
# stamp, only while `attempts` is still the claim's (sent; empty: nothing to report, not
# emailed; failed with the next attempt scheduled; or not sent, with the reason).


PREFERENCE_EMAIL_FIELDS = tuple(
    NotificationPreference.field_for(kind) for kind in NotificationKind.values
)

PREFERENCE_FIELDS = (*PREFERENCE_EMAIL_FIELDS, "digest")

PREFERENCE_USER_FIELDS = ("language", "time_zone")

PREFERENCE_UNKNOWN = gettext_lazy("Unknown preference.")

PREFERENCE_NOT_BOOLEAN = gettext_lazy("Must be true or false.")


def notification_preferences_get(*, user: User) -> NotificationPreference:
    """The user's preferences: their row, or (none yet) an unsaved one with the defaults,
    every email on and no digest. Reading never writes. Language and time zone are
    `.user.language` and `.user.time_zone`."""

    row = NotificationPreference.objects.filter(user=user).first()
    if row is None:
        return NotificationPreference(user=user)
    row.user = user
    return row


def notification_preferences_update(*, actor: User, user: User, **fields) -> NotificationPreference:
    """Change a person's preferences: `email_<kind>` and `digest` (their row, created on the
    first change) and `language` and `time_zone` (their user), in one transaction. Who may is
    the policy's (`plans.permissions`): the person themself, and superusers; anyone else's
    preferences are out of sight (NotVisible)."""

    policy.ensure(actor, policy.ADD, NotificationPreference)
    known = {*PREFERENCE_FIELDS, *PREFERENCE_USER_FIELDS}
    errors = {name: [PREFERENCE_UNKNOWN] for name in sorted(set(fields) - known)}
    errors |= {
        name: [PREFERENCE_NOT_BOOLEAN]
        for name in PREFERENCE_FIELDS
        if name in fields and not isinstance(fields[name], bool)
    }
    if errors:
        raise ValidationError(errors)
    own = {name: value for name, value in fields.items() if name in PREFERENCE_FIELDS}
    on_user = {name: value for name, value in fields.items() if name in PREFERENCE_USER_FIELDS}
    with transaction.atomic():
        # Created with the defaults the first time (a concurrent first change: the unique
        # user wins), then checked against the policy under a row lock: someone else's row
        # rolls back (NetBox's re-check after the write).
        NotificationPreference.objects.bulk_create(
            [NotificationPreference(user=user)], ignore_conflicts=True
        )
        row = NotificationPreference.objects.select_for_update().get(user=user)
        policy.ensure(actor, policy.CHANGE, row)
        if on_user:
            # A locked copy: a refusal leaves the caller's user object as it was.
            locked = User.objects.select_for_update().get(pk=user.pk)
            tracker_services.user_update_preferences(user=locked, **on_user)
            for name in on_user:
                setattr(user, name, getattr(locked, name))
        changed = [name for name, value in own.items() if getattr(row, name) != value]
        for name in changed:
            setattr(row, name, own[name])
        row.full_clean(exclude=["user"], validate_unique=False)
        if changed:
            row.save(update_fields=[*changed, "updated_at"])
        row.user = user
        return row
