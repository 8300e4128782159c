"""The plan dashboard's "New version of this plan" (issue 12): for the plan's coordinators
only; every open task pre-ticked; the ticked ones carried over, the others left open."""

import datetime as dt

import pytest

from plans import services
from plans.models import Plan, StatusUpdate, Task
from tests.factories import OrganizationFactory, PlanFactory, TaskFactory, UserFactory
from tracker.services import system_user

pytestmark = pytest.mark.django_db
S = Task.Status


@pytest.fixture
def setting():
    ministry = OrganizationFactory(kind="ministry", name="Ministry", acronym="MIN")
    company = OrganizationFactory(name="Company", acronym="COM")
    plan = PlanFactory(
        code="JP-1", title="Joint Plan 1.0", coordinating=[ministry], members=[company],
        period_start=dt.date(2024, 1, 1), period_end=dt.date(2025, 12, 31),
    )  # fmt: skip
    people = {}
    for name, org, role in [
        ("coordinator", ministry, "coordinator"),
        ("contributor", company, "contributor"),
        ("elsewhere", OrganizationFactory(kind="ministry"), "coordinator"),
    ]:
        people[name] = UserFactory(username=name)
        services.membership_create(
            actor=system_user(), user=people[name], organization=org, role=role
        )
    tasks = {
        status: TaskFactory(plan=plan, ref=f"R-{status}", lead_organization=company, status=status)
        for status in (S.PLANNED, S.IN_PROGRESS, S.DONE, S.CANCELLED)
    }
    return type("Setting", (), {"plan": plan, "people": people, "tasks": tasks})


def url(plan):
    return f"/plans/{plan.pk}/new-version/"


def test_only_the_plans_coordinators_see_the_action(client, setting):
    plan = setting.plan
    for name, shows, status in [
        ("coordinator", True, 200),  # an incomplete form: 400 below
        ("contributor", False, 403),
        ("elsewhere", None, 404),
    ]:
        client.force_login(setting.people[name])
        dashboard = client.get(f"/plans/{plan.pk}/")
        if shows is None:
            assert dashboard.status_code == 404
        else:
            assert (url(plan) in dashboard.content.decode()) is shows, name
        assert client.get(url(plan)).status_code == status, name
        posted = client.post(url(plan), {"code": "JP-2"}).status_code
        assert posted == (400 if status == 200 else status), name
    assert not Plan.objects.filter(code="JP-2").exists()


def test_the_form_ticks_every_open_task_and_carries_the_ticked_ones(client, setting):
    plan, tasks = setting.plan, setting.tasks
    client.force_login(setting.people["coordinator"])
    page = client.get(url(plan))
    html = page.content.decode()
    for status in (S.PLANNED, S.IN_PROGRESS):
        assert f'value="{tasks[status].pk}" id="id_tasks_{tasks[status].pk}" checked' in html
    for status in (S.DONE, S.CANCELLED):
        assert f'value="{tasks[status].pk}"' not in html  # only open tasks are offered
    assert page.context["form"].initial["period_start"] == dt.date(2026, 1, 1)

    response = client.post(
        url(plan),
        {"code": "JP-2", "title_en": "Joint Plan 2.0", "title_ko": "공동 계획 2.0",
         "period_start": "2026-01-01", "period_end": "2027-12-31",
         "tasks": [tasks[S.IN_PROGRESS].pk]},
    )  # fmt: skip
    new = Plan.objects.get(code="JP-2")
    assert response.status_code == 302 and response["Location"] == f"/plans/{new.pk}/"
    assert new.predecessor == plan and new.title_ko == "공동 계획 2.0"
    carried = new.tasks.get()
    assert carried.predecessor == tasks[S.IN_PROGRESS] and carried.status == S.PLANNED
    old = Task.objects.get(pk=tasks[S.IN_PROGRESS].pk)
    assert old.status == S.CANCELLED
    assert old.updates.order_by("pk").last().kind == StatusUpdate.Kind.TRANSITION
    assert Task.objects.get(pk=tasks[S.PLANNED].pk).status == S.PLANNED  # not ticked


def test_a_refusal_shows_on_the_form_and_writes_nothing(client, setting):
    client.force_login(setting.people["coordinator"])
    before = (Plan.objects.count(), Task.objects.count())
    response = client.post(
        url(setting.plan),
        {"code": "JP-1", "title_en": "", "title_ko": "", "period_start": "2026-01-01",
         "period_end": "2025-01-01", "tasks": [setting.tasks[S.PLANNED].pk]},
    )  # fmt: skip
    assert response.status_code == 400
    form = response.context["form"]
    assert form.errors  # the code is taken, no title, the period ends before it starts
    assert (Plan.objects.count(), Task.objects.count()) == before
    assert 'class="error-summary"' in response.content.decode()


def test_the_task_pages_link_the_carried_over_copy_and_its_original(client, setting):
    plan, tasks = setting.plan, setting.tasks
    client.force_login(setting.people["coordinator"])
    client.post(
        url(plan),
        {"code": "JP-2", "title_en": "Joint Plan 2.0", "title_ko": "공동 계획 2.0",
         "period_start": "2026-01-01", "period_end": "2027-12-31",
         "tasks": [tasks[S.IN_PROGRESS].pk]},
    )  # fmt: skip
    old = tasks[S.IN_PROGRESS]
    copy = Plan.objects.get(code="JP-2").tasks.get()
    old_page = client.get(f"/tasks/{old.pk}/")
    new_page = client.get(f"/tasks/{copy.pk}/")
    assert [t.pk for t in old_page.context["carried_to"]] == [copy.pk]
    assert old_page.context["carried_from"] == []
    assert [t.pk for t in new_page.context["carried_from"]] == [old.pk]
    assert f'href="/tasks/{copy.pk}/"' in old_page.content.decode()
    assert f'href="/tasks/{old.pk}/"' in new_page.content.decode()
    assert "JP-1" in new_page.content.decode()

    # Someone who may see the copy but not the original gets no link to it.
    outsider_org = OrganizationFactory(name="Newcomer", acronym="NEW")
    Plan.objects.get(code="JP-2").participations.create(organization=outsider_org, role="member")
    copy.lead_organization = outsider_org
    copy.save(update_fields=["lead_organization"])
    newcomer = UserFactory(username="newcomer")
    services.membership_create(
        actor=system_user(), user=newcomer, organization=outsider_org, role="contributor"
    )
    client.force_login(newcomer)
    page = client.get(f"/tasks/{copy.pk}/")
    assert page.status_code == 200
    assert page.context["carried_from"] == []
    assert f'href="/tasks/{old.pk}/"' not in page.content.decode()
