"""The admin in words, in the reader's language: Korean labels and model names for a Korean
user, the audit history in labels and names with the reason of a change, the assign choices
limited to the people the policy allows, a menu entry for every page a person may use (before
any row of theirs exists), and the API's problem documents in the caller's language."""

import datetime as dt
import html
import re

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from plans import selectors, services
from plans.models import Task
from tests.factories import UserFactory
from tests.permission_matrix import TASK_REF, build_world
from tracker.services import api_token_create, system_user

S = Task.Status
REASON = "The turbine casing supplier moved delivery by a quarter."


@pytest.fixture
def world(db):
    return build_world()


def korean(user):
    user.language = "ko"
    user.save(update_fields=["language"])
    return user


def text(response) -> str:
    page = re.sub(
        r"<script.*?</script>|<style.*?</style>", " ", response.content.decode(), flags=re.S
    )
    return " ".join(re.sub(r"<[^>]+>", " ", page).split())


# --- Korean labels and names -----------------------------------------------------------------


def test_the_admin_in_korean_shows_korean_statuses_and_model_names(client, world):
    client.force_login(korean(world.user("coordinator")))
    page = text(client.get(reverse("admin:plans_task_changelist") + "?scope=all"))
    assert TASK_REF in page
    assert "진행 중" in page  # the task's status
    assert "과제" in page and "계획" in page  # model and column names
    for english in ("In progress", "Select task to change", "Lead organization", "Status"):
        assert english not in page, english

    index = text(client.get(reverse("admin:index")))
    for name in ("과제", "계획", "포럼", "성과", "알림 정책", "캘린더 피드", "일일 요약"):
        assert name in index, name
    for english in ("Tasks", "Reminder policies", "Calendar feeds", "Daily digests"):
        assert english not in index, english


def test_the_same_admin_in_english_for_an_english_user(client, world):
    client.force_login(world.user("coordinator"))
    page = text(client.get(reverse("admin:plans_task_changelist") + "?scope=all"))
    assert "In progress" in page and "진행 중" not in page


# --- History in words --------------------------------------------------------------------------


def _history(client, task) -> str:
    page = client.get(reverse("admin:plans_task_history", args=[task.pk])).content.decode()
    start = page.index('id="change-history"')
    table = re.sub(r"<[^>]+>", " ", page[start : page.index("</table>", start)])
    return " ".join(html.unescape(table).split())


def test_the_history_shows_labels_names_and_the_reason(client, world):
    coordinator = world.user("coordinator")
    task = world.task
    services.task_transition(
        actor=coordinator, task=task, to_status=S.AT_RISK, expected_from=S.IN_PROGRESS,
        note="Casting supplier is three weeks late.",
    )  # fmt: skip
    services.task_change_deadline(
        actor=coordinator, task=task, due_date=dt.date(2030, 9, 30), reason=REASON
    )
    client.force_login(coordinator)
    table = _history(client, task)
    assert "Status: In progress → At risk" in table
    assert "in_progress" not in table and "at_risk" not in table
    assert "Due date: 2030-06-30 → 2030-09-30" in table
    assert REASON in table
    assert "Casting supplier is three weeks late." in table
    assert "Change reason: None" not in table and "Deleted user" not in table
    assert "None" not in table

    client.force_login(korean(coordinator))
    table = _history(client, task)
    assert "상태: 진행 중 → 지연 위험" in table
    assert "마감일: 2030-06-30 → 2030-09-30" in table
    assert REASON in table


def test_an_empty_assignee_reads_as_a_dash_and_a_person_by_name(client, world):
    coordinator = world.user("coordinator")
    person = world.user("contributor_lead")
    services.task_assign(actor=coordinator, task=world.task, assignee=person, note="Owner named.")
    client.force_login(coordinator)
    table = _history(client, world.task)
    assert f"Assignee: — → {person}" in table
    assert "Deleted user" not in table and "pk=None" not in table
    assert "Owner named." in table


# --- Assign choices --------------------------------------------------------------------------


def _assign_page(client, tasks):
    return client.post(
        reverse("admin:plans_task_changelist") + "?scope=all",
        {"action": "assign", "_selected_action": [task.pk for task in tasks], "index": "0"},
    )


def test_the_assign_action_offers_only_people_who_may_hold_the_task(client, world):
    coordinator = world.user("coordinator")
    client.force_login(coordinator)
    response = _assign_page(client, [world.task])
    assert response.status_code == 200
    offered = set(response.context["form"].fields["assignee"].queryset)
    assert offered == set(selectors.task_assignee_choices(user=coordinator, task=world.task))
    assert world.user("contributor_lead") in offered
    assert world.user("contributor_supporting") in offered
    # A viewer of the lead organization and another firm's contributor may not hold it.
    assert world.user("viewer") not in offered
    assert world.user("contributor_other") not in offered


def test_a_manager_is_offered_only_people_of_the_lead_organization(client, world):
    manager = world.user("manager")
    client.force_login(manager)
    offered = set(_assign_page(client, [world.task]).context["form"].fields["assignee"].queryset)
    assert world.user("contributor_lead") in offered
    assert world.user("contributor_supporting") not in offered


def test_several_tasks_are_offered_the_people_who_may_hold_each(client, world):
    coordinator = world.user("coordinator")
    other = services.task_create(
        actor=coordinator, plan=world.plan_a, ref="SC-78", title="Second task",
        lead_organization=world.other, due_date=dt.date(2030, 12, 31),
    )  # fmt: skip
    client.force_login(coordinator)
    offered = set(
        _assign_page(client, [world.task, other]).context["form"].fields["assignee"].queryset
    )
    assert world.user("contributor_lead") not in offered  # cannot hold SC-78
    assert world.user("contributor_other") not in offered  # cannot hold SC-77
    assert offered == set()


def test_a_person_not_offered_is_refused_by_the_form(client, world):
    client.force_login(world.user("coordinator"))
    response = client.post(
        reverse("admin:plans_task_changelist") + "?scope=all",
        {
            "action": "assign", "_selected_action": [world.task.pk], "apply": "yes",
            "assignee": world.user("contributor_other").pk, "note": "",
        },
    )  # fmt: skip
    assert response.status_code == 200  # the form again, with its error
    assert response.context["form"].errors["assignee"]
    assert Task.objects.get(pk=world.task.pk).assignee_id is None


# --- Menu entries before any row -------------------------------------------------------------

OWN_PAGES = (
    "notifications_notification",
    "notifications_calendarfeed",
    "notifications_digest",
    "notifications_mynotificationpreference",
)


def test_a_firm_user_with_no_rows_has_a_menu_entry_for_each_page_they_may_use(client, world):
    user = world.user("contributor_other")
    client.force_login(user)
    index = client.get(reverse("admin:index")).content.decode()
    for name in OWN_PAGES:
        assert reverse(f"admin:{name}_changelist") in index, name
    for name in (
        "notifications_notification",
        "notifications_calendarfeed",
        "notifications_digest",
    ):
        assert client.get(reverse(f"admin:{name}_changelist")).status_code == 200, name
    # What they may not use stays out of the menu.
    assert reverse("admin:notifications_reminderpolicy_changelist") not in index
    assert reverse("admin:notifications_webhooksubscription_changelist") not in index


def test_a_coordinator_sees_reminder_policies_and_webhooks_before_the_first_one(client, world):
    client.force_login(world.user("coordinator"))
    index = client.get(reverse("admin:index")).content.decode()
    for name in ("notifications_reminderpolicy", "notifications_webhooksubscription"):
        assert reverse(f"admin:{name}_changelist") in index, name
        assert client.get(reverse(f"admin:{name}_changelist")).status_code == 200


def test_a_new_firm_user_is_offered_their_own_pages_only_when_staff(client, world):
    stranger = UserFactory(username="stranger")  # no membership: not staff
    client.force_login(stranger)
    assert client.get(reverse("admin:index")).status_code == 302


# --- The API in the caller's language ------------------------------------------------------


def _token_client(user) -> APIClient:
    _, full = api_token_create(actor=user, user=user, name="erp", scope="read_write")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {full}")
    return client


def _refused_move(client, world, **headers):
    return client.post(
        f"/api/v1/tasks/{world.task.pk}/transition/",
        {"to": "verified", "expected_from": "in_progress"},
        format="json",
        **headers,
    )


def test_api_errors_follow_the_token_users_language(world):
    user = korean(world.user("coordinator"))
    response = _refused_move(_token_client(user), world)
    assert response.status_code == 409
    body = response.json()
    assert body["title"] == "충돌"
    assert body["detail"] == "과제를 '진행 중'에서 '검증 완료'(으)로 바꿀 수 없습니다."
    assert response["Content-Language"] == "ko"


def test_api_errors_follow_an_explicit_accept_language(world):
    user = korean(world.user("coordinator"))
    response = _refused_move(_token_client(user), world, HTTP_ACCEPT_LANGUAGE="en")
    body = response.json()
    assert body["title"] == "Conflict"
    assert body["detail"] == "A task cannot move from 'in_progress' to 'verified'."


def test_api_field_errors_in_korean(world):
    user = korean(world.user("coordinator"))
    response = _token_client(user).post(
        f"/api/v1/tasks/{world.task.pk}/deadline/",
        {"due_date": "2031-01-31", "reason": ""},
        format="json",
    )
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "요청에 잘못된 항목이 있습니다."
    assert any(re.search(r"[가-힣]", error["message"]) for error in body["errors"])


def test_an_english_user_gets_english_errors(world):
    system_user()
    response = _refused_move(_token_client(world.user("coordinator")), world)
    assert response.json()["title"] == "Conflict"
