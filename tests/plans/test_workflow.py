"""The workflow: every allowed move succeeds and leaves one line of history; every other move
is refused and writes nothing."""

import datetime as dt
import itertools

import pytest
import time_machine
from django.core.exceptions import ValidationError

from plans.exceptions import (
    TASK_MOVED,
    TRANSITION_NOT_ALLOWED,
    NotVisible,
    TaskMoved,
    TransitionNotAllowed,
)
from plans.models import StatusUpdate, Task
from plans.services import (
    EVIDENCE_REQUIRED,
    NOTE_REQUIRED,
    WORKFLOW,
    task_transition,
    workflow_move,
)
from tests.factories import PlanFactory, TaskFactory
from tracker.services import system_user

S = Task.Status
NOW = dt.datetime(2026, 3, 2, 1, 30, tzinfo=dt.UTC)
NOTE = "Kick-off meeting held with KEIT; see minutes."
EVIDENCE = "https://www.motie.go.kr/press/2026/03/joint-plan-kickoff"

ALLOWED = sorted(WORKFLOW)
FORBIDDEN = [pair for pair in itertools.product(S.values, repeat=2) if pair not in WORKFLOW]


def moves(pairs):
    """Parameters (from, to) with readable ids such as planned->verified."""
    return [pytest.param(a, b, id=f"{a}->{b}") for a, b in pairs]


@pytest.fixture
def actor(db):
    """The system account: these tests are about the workflow, not about who may act."""
    return system_user()


def snapshot(task: Task):
    """Everything a refused move must leave untouched."""
    return (
        Task.objects.filter(pk=task.pk).values().get(),
        StatusUpdate.objects.filter(task=task).count(),
        StatusUpdate.objects.count(),
    )


def test_workflow_table_is_the_designed_one():
    open_statuses = ["planned", "in_progress", "at_risk", "blocked"]
    assert set(WORKFLOW) == {
        ("planned", "in_progress"),
        ("in_progress", "at_risk"),
        ("in_progress", "blocked"),
        ("at_risk", "in_progress"),
        ("blocked", "in_progress"),
        ("in_progress", "done"),
        ("at_risk", "done"),
        ("done", "verified"),
        ("done", "in_progress"),
        *((status, "cancelled") for status in open_statuses),
        ("cancelled", "planned"),
    }
    assert {pair for pair, move in WORKFLOW.items() if move.needs_note} == {
        ("in_progress", "at_risk"),
        ("in_progress", "blocked"),
        ("in_progress", "done"),
        ("at_risk", "done"),
        ("done", "in_progress"),
        *((status, "cancelled") for status in open_statuses),
        ("cancelled", "planned"),
    }
    assert {pair for pair, move in WORKFLOW.items() if move.by == "coordinator"} == {
        ("done", "verified"),
        ("done", "in_progress"),
        *((status, "cancelled") for status in open_statuses),
        ("cancelled", "planned"),
    }
    assert {pair for pair, move in WORKFLOW.items() if move.needs_evidence} == {
        ("in_progress", "done"),
        ("at_risk", "done"),
    }


def test_every_pair_is_either_allowed_or_forbidden():
    assert len(ALLOWED) == 14
    assert len(FORBIDDEN) == 7 * 7 - 14
    assert all(workflow_move(*pair) is None for pair in FORBIDDEN)


# --- Allowed moves --------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("from_status", "to_status"), moves(ALLOWED))
def test_allowed_move_writes_one_transition(actor, from_status, to_status):
    task = TaskFactory(status=from_status)
    version = task.version
    history = list(task.updates.values_list("pk", flat=True))

    with time_machine.travel(NOW, tick=False):
        moved = task_transition(
            actor=actor,
            task=task,
            to_status=to_status,
            expected_from=from_status,
            note=f"  {NOTE}  ",
            evidence_url=EVIDENCE,
        )

    task.refresh_from_db()
    assert moved.status == task.status == to_status
    assert task.version == moved.version == version + 1
    assert task.updated_by == actor
    assert task.updated_at == NOW
    (update,) = task.updates.exclude(pk__in=history)
    assert update.kind == StatusUpdate.Kind.TRANSITION
    assert (update.status_from, update.status_to) == (from_status, to_status)
    assert update.author == actor
    assert update.note == NOTE
    assert update.evidence_url == EVIDENCE
    assert update.progress == task.progress
    assert update.created_at == NOW


@pytest.mark.django_db
def test_a_move_accepts_the_task_id(actor):
    task = TaskFactory()
    moved = task_transition(
        actor=actor, task=task.pk, to_status=S.IN_PROGRESS, expected_from=S.PLANNED
    )
    assert moved.pk == task.pk
    assert Task.objects.get(pk=task.pk).status == S.IN_PROGRESS


@pytest.mark.django_db
def test_no_actor_is_refused_and_the_system_account_is_recorded():
    task = TaskFactory()
    with pytest.raises(NotVisible):
        task_transition(actor=None, task=task, to_status=S.IN_PROGRESS, expected_from=S.PLANNED)
    assert not task.updates.filter(kind=StatusUpdate.Kind.TRANSITION).exists()
    system = system_user()
    task_transition(actor=system, task=task, to_status=S.IN_PROGRESS, expected_from=S.PLANNED)
    assert task.updates.get(kind=StatusUpdate.Kind.TRANSITION).author == system
    assert system.is_system and not system.is_active and not system.has_usable_password()


@pytest.mark.django_db
def test_at_backdates_the_transition(actor):
    task = TaskFactory(status=S.IN_PROGRESS)
    at = dt.datetime(2025, 12, 1, 9, 0, tzinfo=dt.UTC)
    task_transition(
        actor=actor, task=task, to_status=S.DONE, expected_from=S.IN_PROGRESS, note=NOTE, at=at
    )
    task.refresh_from_db()
    assert task.completed_at == at
    assert task.updates.latest("pk").created_at == at


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("from_status", "to_status"),
    moves(pair for pair, move in WORKFLOW.items() if not move.needs_note),
)
def test_moves_without_note_requirement_accept_no_note(actor, from_status, to_status):
    task = TaskFactory(status=from_status)
    task_transition(actor=actor, task=task, to_status=to_status, expected_from=from_status)
    task.refresh_from_db()
    assert task.status == to_status
    assert task.updates.latest("pk").note == ""


# --- Forbidden moves ------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("from_status", "to_status"), moves(FORBIDDEN))
def test_forbidden_move_is_refused_and_writes_nothing(actor, from_status, to_status):
    task = TaskFactory(status=from_status)
    before = snapshot(task)

    with pytest.raises(TransitionNotAllowed) as exc:
        task_transition(
            actor=actor,
            task=task,
            to_status=to_status,
            expected_from=from_status,
            note=NOTE,
            evidence_url=EVIDENCE,
        )

    assert exc.value.message == TRANSITION_NOT_ALLOWED.format(
        from_status=from_status, to_status=to_status
    )
    assert f"'{from_status}'" in str(exc.value)
    assert f"'{to_status}'" in str(exc.value)
    assert (exc.value.from_status, exc.value.to_status) == (from_status, to_status)
    assert snapshot(task) == before


@pytest.mark.django_db
def test_planned_cannot_jump_to_verified(actor):
    task = TaskFactory()
    before = snapshot(task)
    with pytest.raises(TransitionNotAllowed) as exc:
        task_transition(actor=actor, task=task, to_status=S.VERIFIED, expected_from=S.PLANNED)
    assert str(exc.value) == "A task cannot move from 'planned' to 'verified'."
    assert "planned" in exc.value.message
    assert "verified" in exc.value.message
    assert snapshot(task) == before


@pytest.mark.django_db
def test_unknown_status_is_refused(actor):
    task = TaskFactory(status=S.IN_PROGRESS)
    before = snapshot(task)
    with pytest.raises(TransitionNotAllowed):
        task_transition(actor=actor, task=task, to_status="paused", expected_from=S.IN_PROGRESS)
    assert snapshot(task) == before


# --- Optimistic concurrency -----------------------------------------------------------------


@pytest.mark.django_db
def test_stale_expected_from_raises_task_moved_and_writes_nothing(actor):
    task = TaskFactory(status=S.IN_PROGRESS)
    before = snapshot(task)
    with pytest.raises(TaskMoved) as exc:
        task_transition(actor=actor, task=task, to_status=S.IN_PROGRESS, expected_from=S.PLANNED)
    assert exc.value.message == TASK_MOVED.format(expected="planned", actual="in_progress")
    assert (exc.value.expected, exc.value.actual) == ("planned", "in_progress")
    assert snapshot(task) == before


@pytest.mark.django_db
def test_second_of_two_concurrent_moves_is_refused(actor):
    task = TaskFactory(status=S.IN_PROGRESS)
    seen_by_both = task.status
    task_transition(
        actor=actor,
        task=task,
        to_status=S.BLOCKED,
        expected_from=seen_by_both,
        note="Export licence.",
    )
    before = snapshot(task)
    with pytest.raises(TaskMoved):
        task_transition(
            actor=actor,
            task=task,
            to_status=S.DONE,
            expected_from=seen_by_both,
            note=NOTE,
        )
    assert snapshot(task) == before
    assert Task.objects.get(pk=task.pk).status == S.BLOCKED


@pytest.mark.django_db
def test_task_moved_is_checked_before_the_workflow(actor):
    task = TaskFactory(status=S.DONE)
    with pytest.raises(TaskMoved):
        # planned -> verified is forbidden too, but the caller's view is what is stale.
        task_transition(actor=actor, task=task, to_status=S.VERIFIED, expected_from=S.PLANNED)


# --- Notes and evidence ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("from_status", "to_status"),
    moves(pair for pair, move in WORKFLOW.items() if move.needs_note),
)
@pytest.mark.parametrize("note", ["", "   \n"], ids=["empty", "blank"])
def test_note_is_required_where_the_move_needs_one(actor, from_status, to_status, note):
    task = TaskFactory(status=from_status)
    before = snapshot(task)
    with pytest.raises(ValidationError) as exc:
        task_transition(
            actor=actor,
            task=task,
            to_status=to_status,
            expected_from=from_status,
            note=note,
            evidence_url=EVIDENCE,
        )
    assert exc.value.message_dict == {
        "note": [NOTE_REQUIRED.format(from_status=from_status, to_status=to_status)]
    }
    assert snapshot(task) == before


@pytest.mark.django_db
@pytest.mark.parametrize("from_status", [S.IN_PROGRESS, S.AT_RISK])
def test_evidence_is_required_to_finish_where_the_plan_requires_it(actor, from_status):
    task = TaskFactory(status=from_status, plan=PlanFactory(requires_evidence=True))
    before = snapshot(task)
    with pytest.raises(ValidationError) as exc:
        task_transition(
            actor=actor, task=task, to_status=S.DONE, expected_from=from_status, note=NOTE
        )
    assert exc.value.message_dict == {"evidence_url": [EVIDENCE_REQUIRED]}
    assert snapshot(task) == before

    task_transition(
        actor=actor,
        task=task,
        to_status=S.DONE,
        expected_from=from_status,
        note=NOTE,
        evidence_url=EVIDENCE,
    )
    assert Task.objects.get(pk=task.pk).status == S.DONE


@pytest.mark.django_db
@pytest.mark.parametrize("from_status", [S.IN_PROGRESS, S.AT_RISK])
def test_evidence_is_optional_where_the_plan_does_not_require_it(actor, from_status):
    task = TaskFactory(status=from_status, plan=PlanFactory(requires_evidence=False))
    task_transition(actor=actor, task=task, to_status=S.DONE, expected_from=from_status, note=NOTE)
    task.refresh_from_db()
    assert task.status == S.DONE
    assert task.updates.latest("pk").evidence_url == ""


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("from_status", "to_status"),
    moves([(S.PLANNED, S.IN_PROGRESS), (S.DONE, S.VERIFIED), (S.IN_PROGRESS, S.CANCELLED)]),
)
def test_evidence_plans_need_it_only_to_finish(actor, from_status, to_status):
    task = TaskFactory(status=from_status, plan=PlanFactory(requires_evidence=True))
    task_transition(
        actor=actor, task=task, to_status=to_status, expected_from=from_status, note=NOTE
    )
    assert Task.objects.get(pk=task.pk).status == to_status


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["not a url", "ftp://example.org/report.pdf", "javascript:alert(1)", "example.org"]
)
def test_invalid_evidence_url_is_refused(actor, url):
    task = TaskFactory(status=S.IN_PROGRESS)
    before = snapshot(task)
    with pytest.raises(ValidationError) as exc:
        task_transition(
            actor=actor,
            task=task,
            to_status=S.DONE,
            expected_from=S.IN_PROGRESS,
            note=NOTE,
            evidence_url=url,
        )
    assert list(exc.value.message_dict) == ["evidence_url"]
    assert snapshot(task) == before


# --- What a move sets -----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("from_status", [S.IN_PROGRESS, S.AT_RISK])
def test_done_sets_full_progress_and_completed_at(actor, from_status):
    task = TaskFactory(status=from_status, progress=40)
    with time_machine.travel(NOW, tick=False):
        task_transition(
            actor=actor, task=task, to_status=S.DONE, expected_from=from_status, note=NOTE
        )
    task.refresh_from_db()
    assert task.progress == 100
    assert task.completed_at == NOW
    assert task.verified_at is None
    assert task.updates.latest("pk").progress == 100


@pytest.mark.django_db
def test_verified_sets_verified_at_and_keeps_completed_at(actor):
    task = TaskFactory(status=S.DONE)
    completed_at = task.completed_at
    with time_machine.travel(NOW, tick=False):
        task_transition(actor=actor, task=task, to_status=S.VERIFIED, expected_from=S.DONE)
    task.refresh_from_db()
    assert task.progress == 100
    assert task.verified_at == NOW
    assert task.completed_at == completed_at is not None


@pytest.mark.django_db
def test_return_for_revision_clears_completed_at(actor):
    task = TaskFactory(status=S.DONE)
    assert task.completed_at is not None
    task_transition(
        actor=actor,
        task=task,
        to_status=S.IN_PROGRESS,
        expected_from=S.DONE,
        note="The report lacks the Q4 figures.",
    )
    task.refresh_from_db()
    assert task.status == S.IN_PROGRESS
    assert task.completed_at is None
    assert not Task.objects.filter(pk=task.pk, completed_at__isnull=False).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("from_status", [S.PLANNED, S.IN_PROGRESS, S.AT_RISK, S.BLOCKED])
def test_cancel_keeps_progress_and_sets_no_completion(actor, from_status):
    task = TaskFactory(status=from_status, progress=30)
    task_transition(
        actor=actor,
        task=task,
        to_status=S.CANCELLED,
        expected_from=from_status,
        note="Superseded by the Joint Plan 2.0 task SC-07.",
    )
    task.refresh_from_db()
    assert task.status == S.CANCELLED
    assert task.progress == 30
    assert task.completed_at is None


@pytest.mark.django_db
def test_reopened_task_starts_again_from_planned(actor):
    task = TaskFactory(status=S.CANCELLED)
    task_transition(
        actor=actor, task=task, to_status=S.PLANNED, expected_from=S.CANCELLED, note="Revived."
    )
    task_transition(actor=actor, task=task, to_status=S.IN_PROGRESS, expected_from=S.PLANNED)
    assert Task.objects.get(pk=task.pk).status == S.IN_PROGRESS
    assert list(
        task.updates.filter(kind=StatusUpdate.Kind.TRANSITION).values_list("status_to", flat=True)
    ) == [S.CANCELLED, S.PLANNED, S.IN_PROGRESS]
