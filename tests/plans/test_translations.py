"""Content in English and Korean: API, search, workspace marker, admin filter, demo, migration."""

import datetime as dt

import pytest
from django.core import mail
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import translation
from rest_framework.test import APIClient

from plans import services
from plans.models import Plan, Task, Workstream
from tests.factories import OrganizationFactory, PlanFactory, TaskFactory, UserFactory
from tracker.models import ApiToken, Organization
from tracker.services import api_token_create, system_user

pytestmark = pytest.mark.django_db

KOREAN_TITLE = "반도체 공급망 조기경보 시범 운영"
ENGLISH_TITLE = "Pilot a semiconductor early-warning exchange"


@pytest.fixture(autouse=True)
def _english():
    """Each test starts in English (a request in Korean leaves Korean active in the thread)."""
    translation.activate("en")
    yield
    translation.deactivate()


@pytest.fixture
def world(_english):
    ministry = OrganizationFactory(kind="ministry", name="Ministry of Trade", acronym="MOT")
    ministry.name_ko = "산업통상자원부"
    ministry.save()
    company = OrganizationFactory(name="Lead Electronics", acronym="LEAD")
    plan = PlanFactory(coordinating=[ministry], members=[company], title="Joint Plan")
    coordinator = UserFactory(language="ko")
    services.membership_create(
        actor=system_user(), user=coordinator, organization=ministry, role="coordinator"
    )
    both = TaskFactory(
        plan=plan, lead_organization=company, title=ENGLISH_TITLE, title_ko=KOREAN_TITLE
    )
    english_only = TaskFactory(plan=plan, lead_organization=company, title="Hydrogen roadmap")
    korean_only = TaskFactory(
        plan=plan, lead_organization=company, title=None, title_en=None, title_ko="수소 로드맵"
    )
    return type("World", (), locals())


def api(user, language="en"):
    _, full = api_token_create(actor=user, user=user, name="t", scope=ApiToken.Scope.READ_WRITE)
    client = APIClient(HTTP_ACCEPT_LANGUAGE=language)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {full}")
    return client


# --- API -----------------------------------------------------------------------------------


def test_api_returns_both_languages_and_title_in_the_request_language(world):
    url = f"/api/v1/tasks/{world.both.pk}/"
    english = api(world.coordinator, "en").get(url).json()
    korean = api(world.coordinator, "ko-KR,ko;q=0.9").get(url).json()
    assert (english["title"], english["title_en"], english["title_ko"]) == (
        ENGLISH_TITLE, ENGLISH_TITLE, KOREAN_TITLE,
    )  # fmt: skip
    assert korean["title"] == KOREAN_TITLE
    assert (korean["title_en"], korean["title_ko"]) == (ENGLISH_TITLE, KOREAN_TITLE)


def test_api_title_falls_back_to_the_other_language(world):
    korean = api(world.coordinator, "ko").get(f"/api/v1/tasks/{world.english_only.pk}/").json()
    assert (korean["title"], korean["title_ko"]) == ("Hydrogen roadmap", None)
    english = api(world.coordinator, "en").get(f"/api/v1/tasks/{world.korean_only.pk}/").json()
    assert (english["title"], english["title_en"]) == ("수소 로드맵", None)


def test_api_plans_and_organizations_carry_both_languages(world):
    client = api(world.coordinator, "ko")
    org = client.get(f"/api/v1/organizations/{world.ministry.pk}/").json()
    assert (org["name"], org["name_en"], org["name_ko"]) == (
        "산업통상자원부", "Ministry of Trade", "산업통상자원부",
    )  # fmt: skip
    assert (org["acronym"], org["acronym_en"], org["acronym_ko"]) == ("MOT", "MOT", None)
    plan = client.get(f"/api/v1/plans/{world.plan.pk}/").json()
    assert (plan["title"], plan["title_en"], plan["title_ko"]) == ("Joint Plan", "Joint Plan", None)


def test_api_writes_either_language_and_title_means_the_request_language(world):
    korean = api(world.coordinator, "ko")
    response = korean.patch(
        f"/api/v1/tasks/{world.english_only.pk}/", {"title": "수소 로드맵 수립"}, format="json"
    )
    assert response.status_code == 200, response.json()
    task = Task.objects.get(pk=world.english_only.pk)
    assert (task.title_en, task.title_ko) == ("Hydrogen roadmap", "수소 로드맵 수립")
    english = api(world.coordinator, "en")
    response = english.post(
        "/api/v1/tasks/",
        {"plan": world.plan.pk, "ref": "KO-1", "title_ko": "한국어 과제",
         "lead_organization": world.company.pk, "due_date": "2030-01-31"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["title"], body["title_en"], body["title_ko"]) == (
        "한국어 과제", None, "한국어 과제",
    )  # fmt: skip
    # The original column keeps the English version, or the Korean one when there is none.
    assert Task.objects.filter(pk=body["id"]).values_list("title", flat=True).get() == "한국어 과제"


def test_api_refuses_no_title_and_two_different_titles(world):
    client = api(world.coordinator, "en")
    missing = client.post(
        "/api/v1/tasks/",
        {"plan": world.plan.pk, "ref": "X-1", "lead_organization": world.company.pk,
         "due_date": "2030-01-31"},
        format="json",
    )  # fmt: skip
    assert missing.status_code == 400
    assert "title" in str(missing.json())
    both = client.patch(
        f"/api/v1/tasks/{world.both.pk}/", {"title": "A", "title_en": "B"}, format="json"
    )
    assert both.status_code == 400
    emptied = client.patch(
        f"/api/v1/tasks/{world.korean_only.pk}/", {"title_ko": ""}, format="json"
    )
    assert emptied.status_code == 400
    assert Task.objects.get(pk=world.korean_only.pk).title_ko == "수소 로드맵"


def test_original_column_follows_english_whatever_the_writer_language(world):
    with translation.override("ko"):
        services.task_update(actor=system_user(), task=world.both, title="새 한국어 제목")
    row = Task.objects.filter(pk=world.both.pk).values("title", "title_en", "title_ko").get()
    assert row == {"title": ENGLISH_TITLE, "title_en": ENGLISH_TITLE, "title_ko": "새 한국어 제목"}
    history = world.both.history.order_by("-history_id").first()
    assert (history.title_en, history.title_ko) == (ENGLISH_TITLE, "새 한국어 제목")


# --- Search --------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "ko"])
def test_search_matches_korean_and_english(world, language):
    client = api(world.coordinator, language)

    def found(q, path="tasks"):
        return {row["id"] for row in client.get(f"/api/v1/{path}/", {"q": q}).json()["results"]}

    assert found("조기경보") == {world.both.pk}
    assert found("early-warning") == {world.both.pk}
    assert found("수소") == {world.korean_only.pk}
    assert found("Hydrogen") == {world.english_only.pk}
    organizations = client.get("/api/v1/organizations/", {"q": "산업통상"}).json()["results"]
    assert [row["id"] for row in organizations] == [world.ministry.pk]


# --- Workspace -----------------------------------------------------------------------------


def test_workspace_shows_the_viewer_language_and_marks_the_fallback(client, world):
    client.force_login(world.coordinator)  # language: Korean
    page = client.get(reverse("workspace:task", args=[world.both.pk])).content.decode()
    assert KOREAN_TITLE in page and 'class="fallback"' not in page.split("<h1>")[1][:300]
    page = client.get(reverse("workspace:task", args=[world.english_only.pk])).content.decode()
    heading = page.split("<h1>")[1].split("</h1>")[0]
    assert 'class="fallback" lang="en"' in heading
    assert "Hydrogen roadmap" in heading and 'class="fallback__tag">EN<' in heading
    assert 'title="아직 번역되지 않음"' in heading
    home = client.get(reverse("workspace:home")).content.decode()
    assert 'lang="en"' in home and "Joint Plan" in home  # the plan has no Korean title


def test_workspace_in_english_marks_korean_only_titles(client, world):
    world.coordinator.language = "en"
    world.coordinator.save()
    client.force_login(world.coordinator)
    page = client.get(reverse("workspace:task", args=[world.korean_only.pk])).content.decode()
    heading = page.split("<h1>")[1].split("</h1>")[0]
    assert 'lang="ko"' in heading and "수소 로드맵" in heading and ">KO<" in heading
    assert 'title="Not yet translated"' in heading


# --- Admin ---------------------------------------------------------------------------------


def test_admin_filters_what_lacks_a_translation_and_shows_both_side_by_side(client, world):
    admin = UserFactory(is_superuser=True, is_staff=True)
    client.force_login(admin)
    url = reverse("admin:plans_task_changelist")

    def listed(lacks):
        page = client.get(url, {"lacks": lacks, "scope": "all"})
        return {task.pk for task in page.context["cl"].result_list}

    assert listed("ko") == {world.english_only.pk}
    assert listed("en") == {world.korean_only.pk}
    change = client.get(reverse("admin:plans_task_change", args=[world.both.pk]))
    html = change.content.decode()
    assert 'name="title_en"' in html and 'name="title_ko"' in html
    assert 'name="title"' not in html
    # One row holds both versions.
    assert "field-title_en" in html and "field-title_ko" in html
    organizations = client.get(reverse("admin:tracker_organization_changelist"), {"q": "산업"})
    assert [org.pk for org in organizations.context["cl"].result_list] == [world.ministry.pk]


def test_admin_saves_a_korean_title_through_the_service(client, world):
    admin = UserFactory(is_superuser=True, is_staff=True)
    client.force_login(admin)
    url = reverse("admin:plans_plan_change", args=[world.plan.pk])
    form = client.get(url).context["adminform"].form
    data = {
        name: value
        for name, value in form.initial.items()
        if value is not None and not isinstance(value, list | tuple)
    }
    data.update(
        {
            "title_en": "Joint Plan", "title_ko": "공동계획", "period_start": "2025-01-01",
            "period_end": "2027-12-31", "participations-TOTAL_FORMS": "0",
            "participations-INITIAL_FORMS": "0", "workstreams-TOTAL_FORMS": "0",
            "workstreams-INITIAL_FORMS": "0", "_save": "1",
        }
    )  # fmt: skip
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Plan.objects.get(pk=world.plan.pk).title_ko == "공동계획"


# --- Notifications -------------------------------------------------------------------------


def test_email_shows_the_recipient_language_title(world):
    from notifications import emails
    from notifications.models import Notification

    notification = Notification(
        recipient=world.coordinator, task=world.both, kind="due_soon",
        due_date=dt.date(2030, 6, 30), step=7, dedupe_key="k-1",
    )  # fmt: skip
    korean = emails.build(notification)
    assert KOREAN_TITLE in korean.body
    world.coordinator.language = "en"
    english = emails.build(notification)
    assert ENGLISH_TITLE in english.body and KOREAN_TITLE not in english.body
    assert not mail.outbox


# --- Demo ----------------------------------------------------------------------------------


def test_demo_has_korean_titles_for_every_plan_workstream_task_and_organization():
    from fixtures.loader import load_demo

    load_demo(accounts=False)
    for model, field in [
        (Plan, "title"), (Workstream, "title"), (Task, "title"), (Organization, "name"),
    ]:  # fmt: skip
        missing = model.objects.filter(**{f"{field}_ko__isnull": True}) | model.objects.filter(
            **{f"{field}_ko": ""}
        )
        assert not missing.exists(), f"{model.__name__} without a Korean {field}"
        assert not model.objects.filter(**{f"{field}_en__isnull": True}).exists()
    with translation.override("ko"):
        assert Plan.objects.get(code="KUS-JP2").title == "한미 산업협력 공동계획 2.0 (2025~2027)"
        assert Organization.objects.get(acronym_en="MOTIE").name == "산업통상자원부"


# --- Migration -----------------------------------------------------------------------------

BEFORE = [("tracker", "0005_user_session_epoch"), ("plans", "0005_input_rules")]
AFTER = [("tracker", "0006_content_in_two_languages"), ("plans", "0006_content_in_two_languages")]


def _migrate_old_rows_forward():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    org = old.get_model("tracker", "Organization").objects.create(
        name="Samsung Electronics", acronym="", name_ko="삼성전자", kind="company", country="KR"
    )
    bare = old.get_model("tracker", "Organization").objects.create(
        name="Absolics", acronym="ABS", name_ko="", kind="company", country="US"
    )
    bare2 = old.get_model("tracker", "Organization").objects.create(
        name="Corning", acronym="", name_ko="", kind="company", country="US"
    )
    plan = old.get_model("plans", "Plan").objects.create(
        code="OLD", title="Old plan", description="", period_start=dt.date(2025, 1, 1),
        period_end=dt.date(2026, 1, 1),
    )  # fmt: skip
    task = old.get_model("plans", "Task").objects.create(
        plan=plan, ref="O-1", title="Old task", description="Why it matters",
        lead_organization=org, due_date=dt.date(2025, 6, 30),
        deadline_at=dt.datetime(2025, 6, 30, 15, tzinfo=dt.UTC),
    )  # fmt: skip

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    row = new.get_model("plans", "Task").objects.filter(pk=task.pk).values().get()
    assert (row["title"], row["title_en"], row["title_ko"]) == ("Old task", "Old task", None)
    assert (row["description_en"], row["description_ko"]) == ("Why it matters", None)
    plan_row = new.get_model("plans", "Plan").objects.filter(pk=plan.pk).values().get()
    assert (plan_row["title_en"], plan_row["description_en"]) == ("Old plan", None)
    orgs = new.get_model("tracker", "Organization").objects
    assert orgs.filter(pk=org.pk).values_list("name_en", "name_ko", "acronym_en").get() == (
        "Samsung Electronics", "삼성전자", None,
    )  # fmt: skip
    assert (
        orgs.filter(pk__in=[bare.pk, bare2.pk]).values_list("name_ko", flat=True).distinct()[0]
        is None
    )  # two organizations without a Korean name: NULL, not a clash on ""
    assert orgs.get(pk=bare.pk).acronym_en == "ABS"


@pytest.mark.django_db(transaction=True)
def test_migration_keeps_existing_titles_as_english():
    try:
        _migrate_old_rows_forward()
    finally:  # the next tests need the latest schema, whatever happened here
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
