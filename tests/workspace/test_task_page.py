"""The task page: what it shows (in words, never codes), and that each form does only what
the policy allows, carries the version it loaded and writes nothing when refused.

The role outcomes come from the permission matrix (tests/permission_matrix.py): hidden ->
404, deny -> 403, allow -> the write happens."""

import datetime as dt
import re

import pytest

from plans import services
from plans.models import StatusUpdate, Task
from tests.factories import TaskFactory, UserFactory
from tests.permission_matrix import EXPECTED, ROLES, TASK_REF, TASK_TITLE, build_world
from tracker.services import system_user
from workspace import views

from .helpers import sign_in, task_url, text

S = Task.Status
NOTE = "Casting supplier is three weeks late."
REASON = "The turbine casing supplier moved delivery by a quarter."


@pytest.fixture
def world(db):
    return build_world()


def updates_of(task) -> int:
    return StatusUpdate.objects.filter(task=task).count()


@pytest.mark.parametrize("role", ROLES)
def test_task_page_is_shown_only_to_those_who_see_the_task(client, world, role):
    response = sign_in(client, world.user(role)).get(task_url(world.task))
    expected = EXPECTED[("task", "view")][role]
    if role == "anonymous":
        assert response.status_code == 302 and "/signin/" in response["Location"]
    elif expected == "hidden":
        assert response.status_code == 404
        assert TASK_TITLE not in response.content.decode()
        assert "Not found" in text(response)
    else:
        assert response.status_code == 200
        assert TASK_REF in text(response) and TASK_TITLE in text(response)


def test_task_page_says_everything_in_words(client, world):
    task = world.task
    coordinator = world.user("coordinator")
    services.task_assign(actor=coordinator, task=task, assignee=world.user("contributor_lead"))
    services.task_assign(actor=coordinator, task=task, assignee=None)
    services.task_change_deadline(
        actor=coordinator, task=task, due_date=dt.date(2030, 12, 31), reason=REASON
    )
    task.source_outcomes.set([world.outcome])
    page = text(sign_in(client, coordinator).get(task_url(task)))
    assert "PLAN-A Joint Plan A" in page
    assert "Energy: hydrogen" in page
    assert "Lead Co L" in page and "Supporting Co S" in page
    assert "2030-12-31, ends 24:00 KST" in page
    assert "In progress" in page and "in_progress" not in page
    assert "Hydrogen cooperation MOU" in page and "Korea-US Industrial Dialogue" in page
    assert "Status changed from Planned to In progress" in page
    # an emptied assignee is "no one", never "None" or "Deleted user"
    assert "Assignee changed from contributor_lead" in page or "Assignee changed from" in page
    assert "to no one" in page
    assert "None" not in page and "Deleted user" not in page and "pk=" not in page
    assert "Deadline moved from 2030-06-30 to 2030-12-31" in page
    assert f"Reason: {REASON}" in page


def test_deadline_is_also_shown_in_the_viewers_zone_when_it_differs(client, world):
    coordinator = world.user("coordinator")
    coordinator.time_zone = "America/New_York"
    coordinator.save(update_fields=["time_zone"])
    page = text(sign_in(client, coordinator).get(task_url(world.task)))
    assert "2030-06-30, ends 24:00 KST" in page
    assert "2030-06-30 11:00 EDT your time" in page
    assert "Time zone: America/New_York (EST)" in page


# --- Which actions each role is offered --------------------------------------------------


OFFERED = {
    # role: labels offered on an in-progress task of lead org L
    "viewer": set(),
    "contributor_lead": {"Flag at risk", "Flag blocked", "Mark done", "Report progress"},
    "contributor_supporting": {"Report progress"},
    "manager": {"Flag at risk", "Flag blocked", "Mark done", "Report progress", "Assign"},
    "coordinator": {
        "Flag at risk",
        "Flag blocked",
        "Mark done",
        "Cancel task",
        "Report progress",
        "Assign",
        "Change the deadline",
    },
}
ALL_ACTIONS = set().union(*OFFERED.values()) | {"Verify", "Return for revision"}


@pytest.mark.parametrize("role", OFFERED)
def test_only_the_actions_the_policy_allows_are_offered(client, world, role):
    body = sign_in(client, world.user(role)).get(task_url(world.task)).content.decode()
    offered = {label for label in ALL_ACTIONS if f">{label}</summary>" in body}
    assert offered == OFFERED[role]


# --- Writes, per role, from the matrix -----------------------------------------------------


def _post(client, world, action, data):
    task = world.task
    return client.post(task_url(task, action), {"version": task.version, **data})


WRITES = {
    "move": (
        "transition",
        {"to_status": S.AT_RISK, "expected_from": S.IN_PROGRESS, "note": NOTE},
        lambda task: task.status == S.AT_RISK,
    ),
    "report": ("add_update", {"note": NOTE}, lambda task: task.updates.filter(note=NOTE).exists()),
    "deadline": (
        "change_deadline",
        {"due_date": "2031-03-31", "reason": REASON},
        lambda task: task.due_date == dt.date(2031, 3, 31),
    ),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("form", sorted(WRITES))
def test_each_write_follows_the_matrix(client, world, role, form):
    action, data, happened = WRITES[form]
    before = updates_of(world.task)
    response = _post(sign_in(client, world.user(role)), world, form, data)
    world.task.refresh_from_db()
    expected = EXPECTED[("task", action)][role]
    if role == "anonymous":
        assert response.status_code == 302 and "/signin/" in response["Location"]
    elif expected == "allow":
        assert response.status_code == 302, text(response)
        assert response["Location"] == task_url(world.task)
        assert happened(world.task)
        return
    else:
        assert response.status_code == (404 if expected == "hidden" else 403)
    assert not happened(world.task) and updates_of(world.task) == before


@pytest.mark.parametrize("role", ROLES)
def test_assign_follows_the_matrix(client, world, role):
    target = world.user("contributor_lead")
    response = _post(sign_in(client, world.user(role)), world, "assign", {"assignee": target.pk})
    world.task.refresh_from_db()
    expected = EXPECTED[("task", "assign")][role]
    if expected == "allow":
        assert response.status_code == 302
        assert world.task.assignee == target
    else:
        assert response.status_code in (302, 403, 404)
        assert world.task.assignee is None


def test_verify_and_return_are_for_coordinators(client, world):
    task = world.task
    services.task_transition(
        actor=system_user(), task=task, to_status=S.DONE, expected_from=S.IN_PROGRESS, note=NOTE
    )
    task.refresh_from_db()
    body = sign_in(client, world.user("contributor_lead")).get(task_url(task)).content.decode()
    assert ">Verify</summary>" not in body
    response = client.post(
        task_url(task, "move"),
        {"version": task.version, "to_status": S.VERIFIED, "expected_from": S.DONE},
    )
    assert response.status_code == 403
    client.force_login(world.user("coordinator"))
    body = client.get(task_url(task)).content.decode()
    assert ">Verify</summary>" in body and ">Return for revision</summary>" in body
    response = client.post(
        task_url(task, "move"),
        {"version": task.version, "to_status": S.VERIFIED, "expected_from": S.DONE},
    )
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.status == S.VERIFIED


# --- Refusals come back on the form; nothing is written ------------------------------------


def test_a_stale_version_is_refused_and_nothing_is_written(client, world):
    task = world.task
    stale = task.version
    services.status_update_add(actor=system_user(), task=task, progress=40)
    task.refresh_from_db()
    assert task.version != stale
    before = updates_of(task)
    response = sign_in(client, world.user("contributor_lead")).post(
        task_url(task, "move"),
        {"version": stale, "to_status": S.AT_RISK, "expected_from": S.IN_PROGRESS, "note": NOTE},
    )
    assert response.status_code == 409
    assert str(views.STALE_VERSION) in text(response)
    assert "Nothing was saved." in text(response)
    task.refresh_from_db()
    assert task.status == S.IN_PROGRESS and updates_of(task) == before
    # the page offers fresh forms carrying the current version
    assert f'name="version" value="{task.version}"' in response.content.decode()


def test_a_task_that_moved_meanwhile_is_refused(client, world):
    task = world.task
    response = sign_in(client, world.user("contributor_lead")).post(
        task_url(task, "move"),
        {"version": task.version, "to_status": S.IN_PROGRESS, "expected_from": S.PLANNED},
    )
    assert response.status_code == 409
    assert "The task has moved meanwhile: it is now In progress. Nothing was saved." in text(
        response
    )


def test_a_missing_note_is_shown_on_the_form_in_words(client, world):
    task = world.task
    before = updates_of(task)
    response = sign_in(client, world.user("contributor_lead")).post(
        task_url(task, "move"),
        {"version": task.version, "to_status": S.DONE, "expected_from": S.IN_PROGRESS},
    )
    assert response.status_code == 400
    page = text(response)
    assert "There is a problem" in page
    assert "A note is required to move a task from In progress to Done." in page
    body = response.content.decode()
    assert '<details class="action" id="move-done" open>' in body
    task.refresh_from_db()
    assert task.status == S.IN_PROGRESS and updates_of(task) == before


def test_missing_evidence_is_refused_where_the_plan_requires_it(client, world):
    plan = world.plan_a
    services.plan_update(actor=system_user(), plan=plan, requires_evidence=True)
    task = world.task
    response = sign_in(client, world.user("contributor_lead")).post(
        task_url(task, "move"),
        {
            "version": task.version,
            "to_status": S.DONE,
            "expected_from": S.IN_PROGRESS,
            "note": NOTE,
        },
    )
    assert response.status_code == 400
    assert "This plan requires an evidence link to mark a task done." in text(response)
    task.refresh_from_db()
    assert task.status == S.IN_PROGRESS


def test_refusals_read_in_korean_for_a_korean_user(client, world):
    user = world.user("contributor_lead")
    user.language = "ko"
    user.save(update_fields=["language"])
    task = world.task
    response = sign_in(client, user).post(
        task_url(task, "move"),
        {"version": task.version, "to_status": S.DONE, "expected_from": S.IN_PROGRESS},
    )
    page = text(response)
    assert "'진행 중'에서 '완료'(으)로 바꾸려면 메모가 필요합니다." in page
    assert "A note is required" not in page


def test_a_deadline_change_needs_a_reason(client, world):
    task = world.task
    response = sign_in(client, world.user("coordinator")).post(
        task_url(task, "deadline"), {"version": task.version, "due_date": "2031-01-31"}
    )
    assert response.status_code == 400
    assert "Reason: This field is required." in text(response)
    task.refresh_from_db()
    assert task.due_date == dt.date(2030, 6, 30)


def test_progress_is_reported_with_the_version(client, world):
    task = world.task
    response = sign_in(client, world.user("contributor_lead")).post(
        task_url(task, "report"),
        {
            "version": task.version,
            "note": NOTE,
            "progress": "55",
            "evidence_url": "https://e.org/1",
        },
    )
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.progress == 55
    update = task.updates.latest("created_at", "pk")
    assert (update.note, update.evidence_url) == (NOTE, "https://e.org/1")


def test_a_stale_progress_report_is_refused_and_nothing_is_written(client, world):
    task = world.task
    stale = task.version
    services.status_update_add(actor=system_user(), task=task, progress=40)
    task.refresh_from_db()
    before = updates_of(task)
    response = sign_in(client, world.user("contributor_lead")).post(
        task_url(task, "report"),
        {"version": stale, "note": NOTE, "progress": "41", "evidence_url": ""},
    )
    assert response.status_code == 409
    assert str(views.STALE_VERSION) in text(response)
    task.refresh_from_db()
    assert task.progress == 40 and updates_of(task) == before


def test_a_supporting_organization_reports_notes_but_is_not_offered_progress(client, world):
    body = sign_in(client, world.user("contributor_supporting")).get(task_url(world.task))
    assert 'name="progress"' not in body.content.decode()


# --- Assignment choices ---------------------------------------------------------------------


def _assignee_options(body: str) -> set[str]:
    select = re.search(r'<select name="assignee".*?</select>', body, re.S).group(0)
    return set(re.findall(r'<option value="(\d+)"', select))


def test_assign_offers_only_people_allowed_to_hold_the_task(client, world):
    body = sign_in(client, world.user("manager")).get(task_url(world.task)).content.decode()
    people = {str(world.user(role).pk) for role in ("contributor_lead", "manager")}
    assert _assignee_options(body) == people
    # a coordinator may also pick the supporting organization's people (the services' rule:
    # an assignee works in the task's lead or a supporting organization)
    client.force_login(world.user("coordinator"))
    body = client.get(task_url(world.task)).content.decode()
    more = {"contributor_supporting"}
    assert _assignee_options(body) == people | {str(world.user(role).pk) for role in more}


def test_assigning_someone_outside_the_choices_writes_nothing(client, world):
    outsider = UserFactory()
    task = world.task
    before = updates_of(task)
    response = sign_in(client, world.user("manager")).post(
        task_url(task, "assign"), {"version": task.version, "assignee": outsider.pk}
    )
    assert response.status_code == 400
    task.refresh_from_db()
    assert task.assignee is None and updates_of(task) == before


# --- htmx -----------------------------------------------------------------------------------


def test_htmx_posts_get_the_task_part_back(client, world):
    task = world.task
    response = sign_in(client, world.user("contributor_lead")).post(
        task_url(task, "report"),
        {"version": task.version, "note": NOTE},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="task-main"')
    assert "<html" not in body
    assert "Progress report saved." in text(response)


def test_a_planned_task_starts_from_home_in_two_clicks(client, world):
    """Home -> "Start" (opens the task page with the form open) -> submit."""
    user = world.user("contributor_lead")
    task = TaskFactory(plan=world.plan_a, lead_organization=world.lead, ref="SC-01")
    home = sign_in(client, user).get("/").content.decode()
    link = f"/tasks/{task.pk}/?open=move-in_progress#move-in_progress"
    assert f'href="{link}"' in home
    page = client.get(link).content.decode()
    assert '<details class="action" id="move-in_progress" open>' in page
    response = client.post(
        task_url(task, "move"),
        {"version": task.version, "to_status": S.IN_PROGRESS, "expected_from": S.PLANNED},
    )
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.status == S.IN_PROGRESS
