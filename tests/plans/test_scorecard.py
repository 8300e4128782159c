"""plans.selectors.outcome_scorecard: outcomes by forum as fulfilled / in implementation /
not started / no task yet, counted from the tasks the reader may see."""

import pytest
from django.contrib.auth.models import AnonymousUser

from plans import selectors
from plans.models import Task
from tests.factories import (
    ForumFactory,
    MembershipFactory,
    OrganizationFactory,
    OutcomeFactory,
    PlanFactory,
    TaskFactory,
    UserFactory,
)
from tracker.models import Membership

S = Task.Status
pytestmark = pytest.mark.django_db


def figures(rows) -> dict:
    """{forum name: (fulfilled, in implementation, not started, no task, total)}"""
    return {
        row["forum"].name: (
            row["fulfilled"],
            row["in_implementation"],
            row["not_started"],
            row["no_task"],
            row["total"],
        )
        for row in rows
    }


@pytest.fixture
def superuser():
    return UserFactory(is_superuser=True)


def test_categories_from_the_implementing_tasks(superuser):
    forum = ForumFactory(name="June dialogue")
    plan = PlanFactory()

    def outcome_with(*statuses):
        outcome = OutcomeFactory(forum=forum)
        for status in statuses:
            TaskFactory(plan=plan, status=status, source_outcomes=[outcome])
        return outcome

    outcome_with(S.DONE, S.VERIFIED)  # fulfilled: done counts as much as verified
    outcome_with(S.VERIFIED, S.CANCELLED)  # a cancelled task does not count: fulfilled
    outcome_with(S.DONE, S.PLANNED)  # some started, not all done: in implementation
    outcome_with(S.BLOCKED)  # started, even if stuck: in implementation
    outcome_with(S.PLANNED, S.PLANNED)  # not started
    outcome_with(S.PLANNED, S.CANCELLED)  # not started
    outcome_with()  # no task yet
    outcome_with(S.CANCELLED)  # only a cancelled task: no task yet
    ForumFactory(name="Forum without outcomes")

    assert figures(selectors.outcome_scorecard(user=superuser)) == {
        "June dialogue": (2, 2, 2, 2, 8)
    }


def test_one_row_per_forum_latest_first(superuser):
    import datetime as dt

    june = ForumFactory(name="June", held_on=dt.date(2025, 6, 10))
    august = ForumFactory(name="August", held_on=dt.date(2025, 8, 10))
    done = OutcomeFactory(forum=june)
    TaskFactory(status=S.VERIFIED, source_outcomes=[done])
    OutcomeFactory(forum=june)
    OutcomeFactory(forum=august)

    rows = selectors.outcome_scorecard(user=superuser)
    assert [row["forum"] for row in rows] == [august, june]
    assert figures(rows) == {"June": (1, 0, 0, 1, 2), "August": (0, 0, 0, 1, 1)}
    assert figures(selectors.outcome_scorecard(user=superuser, forum=june)) == {
        "June": (1, 0, 0, 1, 2)
    }


def test_a_task_serving_two_outcomes_counts_for_both(superuser):
    forum = ForumFactory(name="F")
    first, second = OutcomeFactory(forum=forum), OutcomeFactory(forum=forum)
    TaskFactory(status=S.IN_PROGRESS, source_outcomes=[first, second])
    assert figures(selectors.outcome_scorecard(user=superuser)) == {"F": (0, 2, 0, 0, 2)}


def test_categories_count_only_tasks_the_reader_may_see():
    firm = OrganizationFactory()
    other = OrganizationFactory()
    reader = MembershipFactory(organization=firm, role=Membership.Role.CONTRIBUTOR).user
    plan = PlanFactory(members=[firm, other])
    forum = ForumFactory(name="F")
    outcome = OutcomeFactory(forum=forum)
    TaskFactory(plan=plan, lead_organization=firm, status=S.DONE, source_outcomes=[outcome])
    # Led by another firm, visible to its participants only: the reader cannot see it.
    hidden = TaskFactory(plan=plan, lead_organization=other, source_outcomes=[outcome])
    hidden_only = OutcomeFactory(forum=forum)
    hidden.source_outcomes.add(hidden_only)

    # The reader sees outcomes (public records) but not the other firm's planned task.
    assert figures(selectors.outcome_scorecard(user=reader)) == {"F": (1, 0, 0, 1, 2)}
    # Whoever sees every task gets the whole picture.
    assert figures(selectors.outcome_scorecard(user=UserFactory(is_superuser=True))) == {
        "F": (0, 1, 1, 0, 2)
    }


def test_signed_out_sees_nothing():
    TaskFactory(source_outcomes=[OutcomeFactory()])
    assert selectors.outcome_scorecard(user=AnonymousUser()) == []


def test_with_a_plan_only_what_the_plan_took_up(superuser):
    plan = PlanFactory()
    older = PlanFactory()
    june = ForumFactory(name="June")
    august = ForumFactory(name="August")  # only the older plan took it up
    ForumFactory(name="Untouched")

    ours_started = OutcomeFactory(forum=june)
    TaskFactory(plan=plan, status=S.IN_PROGRESS, source_outcomes=[ours_started])
    # Done in the older plan, only planned in ours: from this plan's tasks, not started.
    shared = OutcomeFactory(forum=june)
    TaskFactory(plan=older, status=S.VERIFIED, source_outcomes=[shared])
    TaskFactory(plan=plan, status=S.PLANNED, source_outcomes=[shared])
    # Of a forum tied to the plan, no task anywhere: "no task yet" for this plan.
    OutcomeFactory(forum=june)
    # Of the same forum, implemented only by the older plan: not this plan's, left out.
    elsewhere = OutcomeFactory(forum=june)
    TaskFactory(plan=older, status=S.DONE, source_outcomes=[elsewhere])
    # This plan's only task on it was cancelled and nobody else took it: no task yet.
    dropped = OutcomeFactory(forum=june)
    TaskFactory(plan=plan, status=S.CANCELLED, source_outcomes=[dropped])
    # The older plan's forum: none of it counts for this plan.
    TaskFactory(plan=older, status=S.DONE, source_outcomes=[OutcomeFactory(forum=august)])
    OutcomeFactory(forum=august)

    assert figures(selectors.outcome_scorecard(user=superuser, plan=plan)) == {
        "June": (0, 1, 1, 2, 4)
    }
    assert figures(selectors.outcome_scorecard(user=superuser, plan=older)) == {
        "June": (2, 0, 0, 2, 4),
        "August": (1, 0, 0, 1, 2),
    }
    assert figures(selectors.outcome_scorecard(user=superuser, plan=PlanFactory())) == {}


def test_with_a_plan_and_a_forum(superuser):
    plan = PlanFactory()
    june, august = ForumFactory(name="June"), ForumFactory(name="August")
    for forum in (june, august):
        TaskFactory(plan=plan, status=S.DONE, source_outcomes=[OutcomeFactory(forum=forum)])
    assert figures(selectors.outcome_scorecard(user=superuser, plan=plan, forum=june)) == {
        "June": (1, 0, 0, 0, 1)
    }


@pytest.mark.parametrize("with_plan", [False, True])
def test_fixed_query_count(superuser, django_assert_num_queries, with_plan):
    plan = PlanFactory()

    def make(n):
        for i in range(n):
            forum = ForumFactory()
            outcome = OutcomeFactory(forum=forum)
            OutcomeFactory(forum=forum)
            TaskFactory(plan=plan, status=[S.PLANNED, S.DONE][i % 2], source_outcomes=[outcome])

    kwargs = {"plan": plan} if with_plan else {}
    make(5)
    with django_assert_num_queries(2):
        assert len(selectors.outcome_scorecard(user=superuser, **kwargs)) == 5
    make(45)
    with django_assert_num_queries(2):
        rows = selectors.outcome_scorecard(user=superuser, **kwargs)
    assert len(rows) == 50
    assert sum(row["total"] for row in rows) == 100
    assert sum(row["fulfilled"] for row in rows) == 2 + 22  # every second task is done
    assert sum(row["not_started"] for row in rows) == 3 + 23
    assert sum(row["no_task"] for row in rows) == 50


def test_fixed_query_count_for_a_restricted_reader(django_assert_num_queries):
    firm = OrganizationFactory()
    reader = MembershipFactory(organization=firm).user
    plan = PlanFactory(members=[firm])
    for _ in range(3):
        TaskFactory(plan=plan, lead_organization=firm, source_outcomes=[OutcomeFactory()])
    with django_assert_num_queries(2):
        rows = selectors.outcome_scorecard(user=reader, plan=plan)
    assert sum(row["not_started"] for row in rows) == 3
