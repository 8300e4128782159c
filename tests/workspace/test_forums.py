"""Forum and outcome pages: who sees them (the policy: hidden -> 404), what they show (in
words, the scorecard equal to the selector's), links both ways (forum -> outcome -> task and
back), and a fixed number of queries for 5 or 50 rows."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from plans import permissions as policy
from plans import selectors as plan_selectors
from plans.models import Forum, Outcome, Task
from tests.factories import (
    ForumFactory,
    OrganizationFactory,
    OutcomeFactory,
    PlanFactory,
    TaskFactory,
    UserFactory,
)
from tests.permission_matrix import EXPECTED, ROLES, TASK_REF, TASK_TITLE, build_world
from tracker.models import User

from .helpers import sign_in, task_url, text

S = Task.Status
FORUMS = reverse("workspace:forums")


def forum_url(forum) -> str:
    return reverse("workspace:forum", args=[forum.pk])


def outcome_url(outcome) -> str:
    return reverse("workspace:outcome", args=[outcome.pk])


@pytest.fixture
def world(db):
    world = build_world()
    world.task.source_outcomes.set([world.outcome])
    return world


# --- Who sees what ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("model", ["forum", "outcome"])
def test_forum_and_outcome_pages_follow_the_policy(client, world, role, model):
    url = forum_url(world.forum) if model == "forum" else outcome_url(world.outcome)
    response = sign_in(client, world.user(role)).get(url)
    expected = EXPECTED[(model, "view")][role]
    if role == "anonymous":
        assert response.status_code == 302 and "/signin/" in response["Location"]
    elif expected == "hidden":
        assert response.status_code == 404
    else:
        assert response.status_code == 200
        assert "Hydrogen cooperation MOU" in text(response)


@pytest.mark.parametrize(
    ("model", "url"),
    [
        (Forum, lambda world: forum_url(world.forum)),
        (Outcome, lambda world: outcome_url(world.outcome)),
    ],
)
def test_what_the_policy_hides_is_not_found(client, world, monkeypatch, model, url):
    """Forums and outcomes are public records today; the pages still ask the policy, so a
    rule hiding them would make them 404. The same request with the rule lifted is 200."""
    sign_in(client, world.user("coordinator"))
    monkeypatch.setitem(policy.SCOPES, model, lambda user, action: Q(pk__in=[]))
    response = client.get(url(world))
    assert response.status_code == 404
    assert "Hydrogen cooperation MOU" not in response.content.decode()
    monkeypatch.setitem(policy.SCOPES, model, lambda user, action: Q())
    assert client.get(url(world)).status_code == 200


def test_a_hidden_forum_is_not_listed(client, world, monkeypatch):
    sign_in(client, world.user("viewer"))
    assert "Korea-US Industrial Dialogue" in text(client.get(FORUMS))
    monkeypatch.setitem(policy.SCOPES, Forum, lambda user, action: ~Q(pk=world.forum.pk))
    assert "Korea-US Industrial Dialogue" not in text(client.get(FORUMS))


@pytest.mark.parametrize("name", ["forum", "outcome"])
def test_unknown_ids_are_not_found(client, world, name):
    sign_in(client, world.user("coordinator"))
    assert client.get(reverse(f"workspace:{name}", args=[999999])).status_code == 404


def test_the_pages_need_signing_in(client, world):
    for url in (FORUMS, forum_url(world.forum), outcome_url(world.outcome)):
        response = client.get(url)
        assert response.status_code == 302 and "/signin/" in response["Location"]


def test_pages_answer_only_get(client, world):
    sign_in(client, world.user("coordinator"))
    for url in (FORUMS, forum_url(world.forum), outcome_url(world.outcome)):
        assert client.post(url).status_code == 405


def test_the_outcome_lists_only_tasks_the_viewer_may_see(client, world):
    """contributor_other sees the outcome (a public record) but not task T of another firm:
    T is neither listed nor counted."""
    page = text(sign_in(client, world.user("contributor_other")).get(outcome_url(world.outcome)))
    assert TASK_TITLE not in page and TASK_REF not in page
    assert "No task yet" in page
    page = text(sign_in(client, world.user("contributor_lead")).get(outcome_url(world.outcome)))
    assert TASK_TITLE in page and "In implementation" in page


# --- What they show ---------------------------------------------------------------------------


@pytest.fixture
def june(db):
    """A June forum: a pledge with two tasks (one done, one in progress, overdue), an MOU
    with one verified task, a commitment with no task, and one whose only task was
    cancelled."""
    seoul, boeing = (
        OrganizationFactory(name="Samsung Electronics", name_ko="삼성전자"),
        OrganizationFactory(name="Boeing", name_ko="보잉"),
    )
    ministry = OrganizationFactory(name="MOTIE")
    forum = ForumFactory(
        name="June Ministerial",
        kind=Forum.Kind.MINISTERIAL,
        held_on=dt.date(2025, 6, 10),
        location="Seoul",
        hosts=[ministry],
        source_title="Joint statement",
        source_url="https://example.org/joint-statement",
    )
    pledge = OutcomeFactory(
        forum=forum,
        kind=Outcome.Kind.INVESTMENT_PLEDGE,
        title="Pledge: a packaging plant in Texas",
        parties=[seoul, boeing],
        amount=Decimal("7000000000.00"),
        currency="USD",
        clause_ref="Item 3",
        text="to invest USD 7 billion in advanced packaging",
        signed_on=dt.date(2025, 6, 10),
    )
    mou = OutcomeFactory(forum=forum, kind=Outcome.Kind.MOU, title="MOU on aviation research")
    bare = OutcomeFactory(forum=forum, title="Commitment with no task yet")
    dropped = OutcomeFactory(forum=forum, title="Commitment whose task was cancelled")
    plan = PlanFactory(code="KUS-JP2", title="Joint Plan 2.0", time_zone="Asia/Seoul")
    ny_plan = PlanFactory(code="US-PLAN", title="US plan", time_zone="America/New_York")
    TaskFactory(
        plan=plan, ref="SC-01", title="Site chosen", lead_organization=seoul,
        status=S.DONE, due_date=dt.date(2026, 3, 31), source_outcomes=[pledge],
    )  # fmt: skip
    TaskFactory(
        plan=ny_plan, ref="SC-02", title="Permits filed", lead_organization=seoul,
        status=S.IN_PROGRESS, due_date=dt.date(2027, 6, 30), source_outcomes=[pledge],
    )  # fmt: skip
    TaskFactory(
        plan=plan, ref="AV-01", title="Research programme agreed", lead_organization=boeing,
        status=S.VERIFIED, due_date=dt.date(2026, 1, 15), source_outcomes=[mou],
    )  # fmt: skip
    TaskFactory(
        plan=plan, ref="XX-09", title="Dropped idea", lead_organization=seoul,
        status=S.CANCELLED, due_date=dt.date(2026, 1, 15), source_outcomes=[dropped],
    )  # fmt: skip
    return {"forum": forum, "pledge": pledge, "mou": mou, "bare": bare, "dropped": dropped}


@pytest.fixture
def superuser(db):
    return UserFactory(username="admin", is_superuser=True)


def test_forum_list_shows_date_kind_and_the_selectors_scorecard(client, june, superuser):
    ForumFactory(name="Forum without outcomes", held_on=dt.date(2024, 1, 5))
    page = text(sign_in(client, superuser).get(FORUMS))
    card = plan_selectors.outcome_scorecard(user=superuser)[0]
    assert (card["fulfilled"], card["in_implementation"], card["not_started"]) == (1, 1, 0)
    assert (card["no_task"], card["total"]) == (2, 4)
    # name, location, date, kind, total and the four figures in that order
    assert "June Ministerial Seoul 2025-06-10 Ministerial meeting 4 1 1 0 2" in page
    assert "Forum without outcomes" in page and "2024-01-05" in page
    assert "All forums 4 1 1 0 2" in page
    assert page.index("June Ministerial") < page.index("Forum without outcomes")  # latest first
    response = client.get(FORUMS)
    assert f'href="{forum_url(june["forum"])}"' in response.content.decode()


def test_forum_page_shows_each_outcome_with_parties_kind_amount_deadline_and_status(
    client, june, superuser
):
    response = sign_in(client, superuser).get(forum_url(june["forum"]))
    page = text(response)
    html = response.content.decode()
    assert "Date 2025-06-10" in page and "Kind Ministerial meeting" in page
    assert "Hosts MOTIE" in page
    assert 'href="https://example.org/joint-statement"' in html
    # the pledge: parties, kind, amount with currency, deadline (the last task's, in its
    # plan's zone), rolled-up status and progress
    assert (
        "Pledge: a packaging plant in Texas Item 3 Investment pledge Boeing, Samsung Electronics "
        "USD 7,000,000,000 2027-06-30 ends 24:00 EDT In implementation"
    ) in page
    assert "1 of 2 tasks done" in page
    assert "MOU on aviation research MOU" in page and "Fulfilled 100% 1 of 1 task done" in page
    assert "Commitment with no task yet Commitment none — — No task yet —" in page
    assert "Commitment whose task was cancelled Commitment none — — No task yet" in page
    for key in ("pledge", "mou", "bare", "dropped"):
        assert f'href="{outcome_url(june[key])}"' in html
    # the scorecard equals the selector's
    card = plan_selectors.outcome_scorecard(user=superuser, forum=june["forum"])[0]
    figures = "Fulfilled {fulfilled} In implementation {in_implementation} Not started " \
        "{not_started} No task yet {no_task} Outcomes {total}".format(**card)  # fmt: skip
    assert f"Scorecard {figures}" in page


def test_forum_page_in_korean(client, june, superuser):
    superuser.language = User.Language.KOREAN
    superuser.save(update_fields=["language"])
    page = text(sign_in(client, superuser).get(forum_url(june["forum"])))
    assert "장관회의" in page and "투자" in page
    assert "보잉, 삼성전자" in page
    assert "이행 중" in page and "이행 완료" in page and "과제 미지정" in page
    assert "과제 2건 중 1건 완료" in page
    assert "Ministerial meeting" not in page and "No task yet" not in page


def test_outcome_page_shows_the_outcome_and_its_tasks(client, june, superuser):
    pledge = june["pledge"]
    response = sign_in(client, superuser).get(outcome_url(pledge))
    page, html = text(response), response.content.decode()
    assert f'href="{forum_url(june["forum"])}"' in html  # back to the forum
    assert "Forum June Ministerial (2025-06-10)" in page
    assert "Kind Investment pledge · non-binding" in page
    assert "Parties Boeing, Samsung Electronics" in page
    assert "Amount USD 7,000,000,000" in page
    assert "Deadline 2027-06-30, ends 24:00 EDT" in page
    assert "50% · 1 of 2 tasks done" in page  # (100 + progress of SC-02) / 2
    assert "Clause Item 3" in page and "to invest USD 7 billion" in page
    # its tasks, each linking to its page, soonest deadline first
    assert page.index("SC-01 Site chosen") < page.index("SC-02 Permits filed")
    for task in pledge.tasks.all():
        assert f'href="{task_url(task)}"' in html
    assert "Done" in page and "In progress" in page


def test_outcome_page_lists_cancelled_tasks_last_and_counts_none(client, june, superuser):
    page = text(sign_in(client, superuser).get(outcome_url(june["dropped"])))
    assert "XX-09 Dropped idea" in page and "Cancelled" in page
    assert "No task yet" in page and "none: no task yet" in page


def test_the_task_page_links_its_outcomes_and_their_forum(client, june, superuser):
    task = june["pledge"].tasks.get(ref="SC-01")
    html = sign_in(client, superuser).get(task_url(task)).content.decode()
    assert f'href="{outcome_url(june["pledge"])}"' in html
    assert f'href="{forum_url(june["forum"])}"' in html


def test_the_header_links_to_forums(client, june, superuser):
    html = sign_in(client, superuser).get(reverse("workspace:home")).content.decode()
    assert f'href="{FORUMS}"' in html
    html = client.get(forum_url(june["forum"])).content.decode()
    assert f'href="{FORUMS}" aria-current="page"' in html


# --- Fixed query counts -----------------------------------------------------------------------


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.fixture
def restricted(db):
    """A firm's contributor (the policy's scopes are subqueries, not unrestricted)."""
    from tests.factories import MembershipFactory

    firm = OrganizationFactory()
    user = MembershipFactory(organization=firm).user
    plan = PlanFactory(members=[firm])
    return user, firm, plan


def test_forum_list_query_count_is_fixed(client, restricted, django_assert_num_queries):
    user, firm, plan = restricted

    def add(n):
        for _ in range(n):
            outcome = OutcomeFactory(forum=ForumFactory())
            TaskFactory(plan=plan, lead_organization=firm, source_outcomes=[outcome])

    sign_in(client, user)
    add(5)
    baseline = count_queries(client, FORUMS)
    add(45)
    with django_assert_num_queries(baseline):
        response = client.get(FORUMS)
    assert text(response).count("Korea-US Forum") == 50


def test_forum_page_query_count_is_fixed(client, restricted, django_assert_num_queries):
    user, firm, plan = restricted
    forum = ForumFactory()
    parties = [OrganizationFactory(), OrganizationFactory()]

    def add(n):
        for i in range(n):
            outcome = OutcomeFactory(forum=forum, parties=parties)
            TaskFactory(
                plan=plan, lead_organization=firm, status=[S.PLANNED, S.DONE][i % 2],
                source_outcomes=[outcome],
            )  # fmt: skip

    sign_in(client, user)
    add(5)
    baseline = count_queries(client, forum_url(forum))
    add(45)
    with django_assert_num_queries(baseline):
        response = client.get(forum_url(forum))
    assert response.content.decode().count('href="/outcomes/') == 50


def test_outcome_page_query_count_is_fixed(client, restricted, django_assert_num_queries):
    user, firm, plan = restricted
    outcome = OutcomeFactory(parties=[firm])

    def add(n):
        for _ in range(n):
            TaskFactory(plan=plan, lead_organization=firm, source_outcomes=[outcome])

    sign_in(client, user)
    add(5)
    baseline = count_queries(client, outcome_url(outcome))
    add(45)
    with django_assert_num_queries(baseline):
        response = client.get(outcome_url(outcome))
    assert len(re.findall(r'href="/tasks/\d+/"', response.content.decode())) == 50
