"""Notification preferences: read lazily (defaults without a row), changed by the person
themself only (service, admin "My notification preferences", API), language and time zone
included, in one transaction; bad input is refused naming the field. And the digests' admin."""

import datetime as dt

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from notifications import services
from notifications.models import Digest, NotificationPreference
from plans.exceptions import NotAllowed, NotVisible
from tests.factories import UserFactory
from tracker.models import ApiToken
from tracker.services import api_token_create

pytestmark = pytest.mark.django_db

URL = "/api/v1/notification-preferences/"
DEFAULTS = {
    "email_due_soon": True,
    "email_due_today": True,
    "email_overdue": True,
    "email_escalation_manager": True,
    "email_escalation_coordinators": True,
    "email_awaiting_verification": True,
    "digest": False,
}


@pytest.fixture
def person(db):
    return UserFactory(time_zone="Asia/Seoul", language="en")


@pytest.fixture
def other(db):
    return UserFactory(time_zone="America/New_York", language="en")


def as_dict(preference) -> dict:
    return {name: getattr(preference, name) for name in DEFAULTS}


# --- Service ----------------------------------------------------------------------------------


def test_reading_gives_the_defaults_and_writes_nothing(person):
    preference = services.notification_preferences_get(user=person)
    assert preference.pk is None and as_dict(preference) == DEFAULTS
    assert preference.user == person
    assert not NotificationPreference.objects.exists()


def test_update_creates_the_row_and_changes_language_and_time_zone(person):
    preference = services.notification_preferences_update(
        actor=person, user=person, digest=True, email_overdue=False,
        language="ko", time_zone="America/New_York",
    )  # fmt: skip
    assert preference.pk is not None
    assert as_dict(preference) == {**DEFAULTS, "digest": True, "email_overdue": False}
    person.refresh_from_db()
    assert (person.language, person.time_zone) == ("ko", "America/New_York")
    again = services.notification_preferences_update(actor=person, user=person, digest=False)
    assert again.pk == preference.pk and NotificationPreference.objects.count() == 1
    assert as_dict(services.notification_preferences_get(user=person)) == {
        **DEFAULTS,
        "email_overdue": False,
    }
    # Only language or time zone: the row keeps the defaults.
    other = UserFactory()
    services.notification_preferences_update(actor=other, user=other, time_zone="Europe/Berlin")
    assert as_dict(services.notification_preferences_get(user=other)) == DEFAULTS
    other.refresh_from_db()
    assert other.time_zone == "Europe/Berlin"


def test_one_transaction_a_bad_time_zone_saves_nothing(person):
    with pytest.raises(ValidationError) as error:
        services.notification_preferences_update(
            actor=person, user=person, digest=True, language="ko", time_zone="Mars/Olympus"
        )
    assert set(error.value.message_dict) == {"time_zone"}
    assert "Mars/Olympus" in error.value.message_dict["time_zone"][0]
    person.refresh_from_db()
    assert (person.language, person.time_zone) == ("en", "Asia/Seoul")
    assert not NotificationPreference.objects.exists()


def test_unknown_fields_and_non_booleans_are_refused_by_name(person):
    with pytest.raises(ValidationError) as error:
        services.notification_preferences_update(
            actor=person, user=person, email_everything=True, digest="yes"
        )
    assert set(error.value.message_dict) == {"email_everything", "digest"}
    with pytest.raises(ValidationError) as error:
        services.notification_preferences_update(actor=person, user=person, language="fr")
    assert set(error.value.message_dict) == {"language"}


def test_someone_elses_preferences_are_out_of_sight(person, other):
    """The policy's rule (plans.permissions): your own, and superusers everyone's."""
    with pytest.raises(NotVisible):
        services.notification_preferences_update(
            actor=other, user=person, digest=True, language="ko"
        )
    with pytest.raises(NotAllowed):  # anonymous: may not create any
        services.notification_preferences_update(actor=AnonymousUser(), user=person, digest=True)
    assert not NotificationPreference.objects.exists()
    person.refresh_from_db()
    assert person.language == "en"
    # The same change by the person themself works, and a superuser's.
    services.notification_preferences_update(actor=person, user=person, digest=True)
    assert NotificationPreference.objects.get().user == person
    root = UserFactory(is_superuser=True, is_staff=True)
    services.notification_preferences_update(actor=root, user=person, email_overdue=False)
    assert NotificationPreference.objects.get().email_overdue is False


# --- API --------------------------------------------------------------------------------------


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def with_token(user, scope):
    _token, full = api_token_create(actor=user, user=user, name="t", scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {full}")
    return client


def test_get_your_own_defaults(person, other):
    services.notification_preferences_update(actor=other, user=other, digest=True)
    response = api(person).get(URL)
    assert response.status_code == 200
    assert response.json() == {**DEFAULTS, "language": "en", "time_zone": "Asia/Seoul"}


def test_patch_changes_only_what_is_sent(person):
    response = api(person).patch(
        URL, {"digest": True, "email_due_today": False, "language": "ko"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json() == {
        **DEFAULTS, "digest": True, "email_due_today": False,
        "language": "ko", "time_zone": "Asia/Seoul",
    }  # fmt: skip
    person.refresh_from_db()
    assert person.language == "ko"
    assert api(person).get(URL).json()["email_due_today"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"language": "fr"}, "language"),
        ({"digest": "often"}, "digest"),
        ({"email_everything": False}, "email_everything"),
        ({"user": 1}, "user"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(person, body, field):
    response = api(person).patch(URL, {**body, "digest": body.get("digest", True)}, format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 400
    assert [error["field"] for error in problem["errors"]] == [field]
    # Nothing was written, not even the valid part.
    assert not NotificationPreference.objects.exists()
    person.refresh_from_db()
    assert (person.language, person.time_zone) == ("en", "Asia/Seoul")


def test_token_scope_a_read_token_reads_but_does_not_write(person):
    reader = with_token(person, ApiToken.Scope.READ)
    assert reader.get(URL).status_code == 200
    refused = reader.patch(URL, {"digest": True}, format="json")
    assert refused.status_code == 403
    assert not NotificationPreference.objects.exists()
    # The same request with a read-write token is allowed.
    writer = with_token(person, ApiToken.Scope.READ_WRITE)
    assert writer.patch(URL, {"digest": True}, format="json").status_code == 200
    assert NotificationPreference.objects.get(user=person).digest is True


def test_anonymous_is_refused():
    client = APIClient()
    assert client.get(URL).status_code == 401
    assert client.patch(URL, {"digest": True}, format="json").status_code == 401


def test_a_fixed_number_of_queries(person, django_assert_num_queries):
    client = api(person)
    with django_assert_num_queries(1):  # the row
        client.get(URL)
    client.patch(URL, {"digest": True}, format="json")
    with django_assert_num_queries(1):
        client.get(URL)
    with CaptureQueriesContext(connection) as first:
        client.patch(URL, {"digest": False, "time_zone": "Europe/Berlin"}, format="json")
    with CaptureQueriesContext(connection) as second:
        client.patch(URL, {"digest": True, "time_zone": "Asia/Seoul"}, format="json")
    # The user's validation and update (tracker.services), then the row: the same each time.
    assert len(first.captured_queries) == len(second.captured_queries) <= 17


# --- Admin ------------------------------------------------------------------------------------

CHANGELIST = "admin:notifications_mynotificationpreference_changelist"
ADD = "admin:notifications_mynotificationpreference_add"
CHANGE = "admin:notifications_mynotificationpreference_change"
FORM = {
    "email_due_soon": "on",
    "email_due_today": "on",
    "email_overdue": "on",
    "email_escalation_manager": "on",
    "email_awaiting_verification": "on",
    # email_escalation_coordinators unchecked
    "digest": "on",
    "language": "ko",
    "time_zone": "America/New_York",
}


def _staff(user):
    user.is_staff = True
    user.save()
    return user


def test_admin_my_preferences_first_save_then_change(client, person):
    client.force_login(_staff(person))
    index = client.get(reverse("admin:index")).content.decode()
    assert "My notification preferences" in index
    response = client.get(reverse(CHANGELIST))
    assert response.status_code == 302 and response["Location"] == reverse(ADD)
    page = client.get(reverse(ADD))
    assert page.status_code == 200
    assert page.context["adminform"].form.initial["time_zone"] == "Asia/Seoul"

    saved = client.post(reverse(ADD), FORM)
    preference = NotificationPreference.objects.get(user=person)
    assert saved.status_code == 302 and saved["Location"] == reverse(CHANGE, args=[preference.pk])
    assert preference.digest is True and preference.email_escalation_coordinators is False
    person.refresh_from_db()
    assert (person.language, person.time_zone) == ("ko", "America/New_York")

    assert client.get(reverse(CHANGELIST))["Location"] == reverse(CHANGE, args=[preference.pk])
    page = client.get(reverse(CHANGE, args=[preference.pk]))
    assert page.status_code == 200
    assert page.context["adminform"].form.initial["language"] == "ko"
    # Once the row exists there is nothing to add.
    assert client.get(reverse(ADD)).status_code == 403
    changed = client.post(reverse(CHANGE, args=[preference.pk]), {**FORM, "digest": ""})
    assert changed.status_code == 302
    preference.refresh_from_db()
    assert preference.digest is False


def test_admin_bad_time_zone_is_a_form_error(client, person):
    client.force_login(_staff(person))
    response = client.post(reverse(ADD), {**FORM, "time_zone": "Mars/Olympus"})
    assert response.status_code == 200
    assert "time_zone" in response.context["adminform"].form.errors
    assert not NotificationPreference.objects.exists()


def test_admin_nobody_opens_someone_elses_preferences(client, person, other):
    services.notification_preferences_update(actor=other, user=other, digest=True)
    theirs = NotificationPreference.objects.get(user=other)
    for intruder in (_staff(person),):
        client.force_login(intruder)
        assert client.get(reverse(CHANGE, args=[theirs.pk])).status_code == 404
        assert client.post(reverse(CHANGE, args=[theirs.pk]), FORM).status_code == 404
        history = reverse("admin:notifications_mynotificationpreference_history", args=[theirs.pk])
        assert client.get(history).status_code == 404
        # Their own list leads to their own page, never to the other's.
        assert client.get(reverse(CHANGELIST))["Location"] == reverse(ADD)
    theirs.refresh_from_db()
    assert theirs.digest is True
    other.refresh_from_db()
    assert other.language == "en"
    # The owner opens it (refused above for the right reason), and so does a superuser,
    # whose list still leads to their own page; a superuser's save changes the owner's row.
    client.force_login(_staff(other))
    assert client.get(reverse(CHANGE, args=[theirs.pk])).status_code == 200
    client.force_login(_staff(UserFactory(is_superuser=True)))
    assert client.get(reverse(CHANGELIST))["Location"] == reverse(ADD)
    assert client.get(reverse(CHANGE, args=[theirs.pk])).status_code == 200
    response = client.post(reverse(CHANGE, args=[theirs.pk]), {**FORM, "digest": ""})
    assert response.status_code == 302
    theirs.refresh_from_db()
    assert theirs.digest is False and theirs.user == other


def test_admin_needs_staff(client, person):
    client.force_login(person)  # not staff
    response = client.get(reverse(CHANGELIST))
    assert response.status_code == 302 and "/login/" in response["Location"]


# --- The digests' admin ---------------------------------------------------------------------


def _digest(user, day, **fields):
    now = dt.datetime(2026, 3, 9, tzinfo=dt.UTC)
    fields = {"created_at": now, "due_at": now, "next_attempt_at": now, **fields}
    return Digest.objects.create(user=user, day=day, **fields)


def test_admin_digests_are_read_only_and_your_own(client, person, other):
    mine = _digest(
        person, dt.date(2026, 3, 9), status=Digest.Status.NOT_SENT, next_attempt_at=None,
        email_failed_at=dt.datetime(2026, 3, 9, tzinfo=dt.UTC),
        failure_reason="Refused by the mail server: 550 No such user",
    )  # fmt: skip
    theirs = _digest(other, dt.date(2026, 3, 9))
    client.force_login(_staff(person))
    changelist = client.get(reverse("admin:notifications_digest_changelist"))
    assert changelist.status_code == 200
    assert [d.pk for d in changelist.context["cl"].result_list] == [mine.pk]
    assert "550 No such user" in changelist.content.decode()
    page = client.get(reverse("admin:notifications_digest_change", args=[mine.pk]))
    assert page.status_code == 200
    assert (
        client.post(reverse("admin:notifications_digest_change", args=[mine.pk]), {}).status_code
        == 403
    )
    assert (
        client.get(reverse("admin:notifications_digest_change", args=[theirs.pk])).status_code
        == 404
    )
    assert client.get(reverse("admin:notifications_digest_add")).status_code == 403
    # A superuser sees everyone's (to look into failures), still read-only.
    client.force_login(_staff(UserFactory(is_superuser=True)))
    changelist = client.get(reverse("admin:notifications_digest_changelist"))
    assert {d.pk for d in changelist.context["cl"].result_list} == {mine.pk, theirs.pk}
    assert (
        client.get(reverse("admin:notifications_digest_change", args=[theirs.pk])).status_code
        == 200
    )
