"""The readout intake pages: paste, review one draft at a time (htmx), create tasks; who may;
bad input shown on the form; the same number of queries for 5 and 50 drafts."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from plans.intake.models import OutcomeDraft, Readout
from plans.models import Task

from ..plans.test_api_intake import world  # noqa: F401 (the fixture)
from ..plans.test_intake_reading import PUBLISHED, READOUT_EN

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def coordinator(client, world):  # noqa: F811
    client.force_login(world.coordinator)
    return client


def paste(client, forum, text=READOUT_EN):
    return client.post(
        f"/forums/{forum.pk}/intake/", {"text": text, "published_on": PUBLISHED.isoformat()}
    )


def test_paste_review_and_create_tasks(coordinator, world):  # noqa: F811
    forum_page = coordinator.get(f"/forums/{world.forum.pk}/").content.decode()
    assert f'href="/forums/{world.forum.pk}/intake/"' in forum_page
    response = paste(coordinator, world.forum)
    assert response.status_code == 302
    page = coordinator.get(response["Location"]).content.decode()
    assert "11 commitments found" in page
    assert "MOTIE and Commerce agreed to launch a joint early warning system" in page

    drafts = list(OutcomeDraft.objects.order_by("position"))
    first, kotra = drafts[0], drafts[-1]
    prefix = f"draft-{first.pk}"
    edited = coordinator.post(
        f"/intake/drafts/{first.pk}/",
        {f"{prefix}-title": "Early warning system", f"{prefix}-kind": "commitment",
         f"{prefix}-parties": [world.orgs["MOTIE"].pk, world.orgs["DOC"].pk],
         f"{prefix}-deadline": "2025-10-31"},
        **HTMX,
    )  # fmt: skip
    assert edited.status_code == 200
    assert "Draft saved." in edited.content.decode()
    first.refresh_from_db()
    assert (first.title, first.deadline) == ("Early warning system", dt.date(2025, 10, 31))

    dropped = coordinator.post(f"/intake/drafts/{kotra.pk}/drop/", **HTMX)
    assert dropped.status_code == 200 and "Dropped" in dropped.content.decode()
    confirmed = coordinator.post(f"/intake/drafts/{first.pk}/confirm/", **HTMX)
    body = confirmed.content.decode()
    assert confirmed.status_code == 200
    assert 'id="intake-tasks" hx-swap-oob="true"' in body and "Early warning system" in body
    first.refresh_from_db()
    assert first.outcome is not None and first.outcome.title_en == "Early warning system"

    made = coordinator.post(
        f"/forums/{world.forum.pk}/intake/tasks/",
        {"tasks-plan": world.plan.pk, "tasks-ref_prefix": "EW", "tasks-drafts": [first.pk]},
    )
    assert made.status_code == 302
    task = Task.objects.get(plan=world.plan, ref="EW-01")
    assert list(task.source_outcomes.all()) == [first.outcome]
    assert task.due_date == dt.date(2025, 10, 31)
    assert "1 task created in JP-X: EW-01." in coordinator.get(made["Location"]).content.decode()


def test_bad_input_is_shown_on_the_form_and_nothing_is_saved(coordinator, world):  # noqa: F811
    response = paste(coordinator, world.forum, text="They noted the progress.")
    assert response.status_code == 400
    assert "No commitment was found in this text" in response.content.decode()
    empty = coordinator.post(f"/forums/{world.forum.pk}/intake/", {"published_on": "x"})
    assert empty.status_code == 400
    assert not Readout.objects.exists()
    paste(coordinator, world.forum)
    draft = OutcomeDraft.objects.first()
    prefix = f"draft-{draft.pk}"
    bad = coordinator.post(
        f"/intake/drafts/{draft.pk}/",
        {f"{prefix}-title": "", f"{prefix}-kind": "commitment", f"{prefix}-amount": "5"},
        **HTMX,
    )
    assert bad.status_code == 400
    assert "There is a problem" in bad.content.decode()
    draft.refresh_from_db()
    assert draft.title != ""
    coordinator.post(f"/intake/drafts/{draft.pk}/drop/", **HTMX)
    again = coordinator.post(f"/intake/drafts/{draft.pk}/confirm/", **HTMX)
    assert again.status_code == 409
    assert "already been reviewed" in again.content.decode()


def test_who_may(client, world):  # noqa: F811
    client.force_login(world.coordinator)
    paste(client, world.forum)
    draft = OutcomeDraft.objects.first()
    client.force_login(world.viewer)
    forum_page = client.get(f"/forums/{world.forum.pk}/").content.decode()
    assert "/intake/" not in forum_page
    assert client.get(f"/forums/{world.forum.pk}/intake/").status_code == 403
    assert paste(client, world.forum).status_code == 403
    assert client.post(f"/intake/drafts/{draft.pk}/confirm/", **HTMX).status_code == 404
    assert client.get("/forums/999999/intake/").status_code == 404
    client.logout()
    assert client.get(f"/forums/{world.forum.pk}/intake/").status_code == 302  # sign in


def test_the_page_takes_the_same_queries_for_5_and_50_drafts(coordinator, world):  # noqa: F811
    counts = []
    for count in (5, 45):
        text = " ".join(f"KEIT will open call number {i}." for i in range(count))
        paste(coordinator, world.forum, text=text)
        with CaptureQueriesContext(connection) as queries:
            response = coordinator.get(f"/forums/{world.forum.pk}/intake/")
        assert response.status_code == 200
        counts.append(len(queries))
    assert OutcomeDraft.objects.count() == 50
    assert counts[0] == counts[1], counts
