"""Idempotency-Key on API POSTs (tracker/idempotency.py): a retried POST writes once."""

import datetime as dt
import json
import threading
import time
import uuid

import httpx
import pytest
import time_machine
from django.conf import settings
from django.db import connection, transaction
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from plans import services
from plans.models import StatusUpdate, Task
from tests.factories import OrganizationFactory, PlanFactory, TaskFactory, UserFactory
from tracker import idempotency
from tracker.models import ApiToken, IdempotencyKey
from tracker.services import api_token_create, system_user
from tracker.tasks import expire_idempotency_keys_task

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"


@pytest.fixture
def world():
    ministry = OrganizationFactory(kind="ministry", name="Ministry", acronym="MIN")
    company = OrganizationFactory(name="Lead Co", acronym="LEAD")
    plan = PlanFactory(coordinating=[ministry], members=[company])
    coordinator, contributor = UserFactory(), UserFactory()
    for user, org, role in [
        (coordinator, ministry, "coordinator"),
        (contributor, company, "contributor"),
    ]:
        services.membership_create(actor=system_user(), user=user, organization=org, role=role)
    task = TaskFactory(plan=plan, lead_organization=company, status="planned")
    return type("World", (), locals())


def bearer(user, scope=ApiToken.Scope.READ_WRITE):
    _, full = api_token_create(actor=user, user=user, name="test", scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {full}")
    return client


def written(task) -> int:
    """The task's history after its creation."""
    return StatusUpdate.objects.filter(task=task).exclude(kind="created").count()


def key() -> str:
    return str(uuid.uuid4())


def start(world, client, idempotency_key, **extra):
    return client.post(
        f"/api/v1/tasks/{world.task.pk}/transition/",
        {"to": "in_progress", "expected_from": "planned", **extra},
        HTTP_IDEMPOTENCY_KEY=idempotency_key,
    )


def test_a_retried_transition_writes_once_and_gets_the_first_answer(world):
    client = bearer(world.contributor)
    k = key()
    first = start(world, client, k)
    assert first.status_code == 200, first.content
    assert idempotency.REPLAYED_HEADER not in first
    second = start(world, client, k)
    assert second.status_code == 200
    assert second.content == first.content
    assert second["ETag"] == first["ETag"]
    assert second["Content-Type"] == first["Content-Type"]
    assert second[idempotency.REPLAYED_HEADER] == "true"
    assert StatusUpdate.objects.filter(task=world.task, kind="transition").count() == 1
    task = Task.objects.get(pk=world.task.pk)
    assert task.status == "in_progress" and task.version == world.task.version + 1
    # Without the key the same POST runs again (and the workflow refuses it: 409).
    again = client.post(
        f"/api/v1/tasks/{world.task.pk}/transition/",
        {"to": "in_progress", "expected_from": "planned"},
    )
    assert again.status_code == 409


def test_a_retried_progress_report_writes_once(world):
    world.task.status = "in_progress"
    world.task.save()
    client = bearer(world.contributor)
    k = key()
    body = {"progress": 40, "note": "Pilot line running."}
    url = f"/api/v1/tasks/{world.task.pk}/updates/"
    answers = [client.post(url, body, HTTP_IDEMPOTENCY_KEY=k) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 201], answers[0].content
    assert answers[1].content == answers[2].content == answers[0].content
    assert answers[2]["ETag"] == answers[0]["ETag"]
    assert StatusUpdate.objects.filter(task=world.task, kind="progress").count() == 1
    assert Task.objects.get(pk=world.task.pk).progress == 40


def test_a_retried_task_create_writes_once(world):
    client = bearer(world.coordinator)
    body = {"plan": world.plan.pk, "ref": "NEW-1", "title": "New task",
            "lead_organization": world.company.pk, "due_date": "2027-03-31"}  # fmt: skip
    k = key()
    first = client.post("/api/v1/tasks/", body, HTTP_IDEMPOTENCY_KEY=k)
    assert first.status_code == 201, first.content
    # The same body with other spacing and key order is the same request.
    reordered = json.dumps(dict(reversed(body.items())), indent=3)
    second = client.post(
        "/api/v1/tasks/", reordered, content_type="application/json", HTTP_IDEMPOTENCY_KEY=k
    )
    assert second.status_code == 201
    assert second.json() == first.json()
    assert second[idempotency.REPLAYED_HEADER] == "true"
    assert Task.objects.filter(plan=world.plan, ref="NEW-1").count() == 1


def test_the_same_key_with_another_body_is_422_naming_the_header(world):
    client = bearer(world.contributor)
    k = key()
    assert start(world, client, k).status_code == 200
    other = start(world, client, k, note="Now with a note.")
    assert other.status_code == 422
    assert other["Content-Type"] == PROBLEM
    problem = other.json()
    assert problem["status"] == 422
    assert problem["errors"] == [
        {"field": "Idempotency-Key", "message": str(idempotency.KEY_REUSED)}
    ]
    # Another path with the same key is another request too.
    other_path = client.post(
        f"/api/v1/tasks/{world.task.pk}/updates/", {"note": "x"}, HTTP_IDEMPOTENCY_KEY=k
    )
    assert other_path.status_code == 422
    assert written(world.task) == 1


def test_keys_belong_to_the_token_or_to_the_session_user(world):
    world.task.status = "in_progress"
    world.task.save()
    url = f"/api/v1/tasks/{world.task.pk}/updates/"
    k = key()
    one, two = bearer(world.contributor), bearer(world.contributor)
    session = APIClient(enforce_csrf_checks=False)
    session.force_login(world.contributor)
    for client in (one, two, session):
        assert client.post(url, {"note": "Same key."}, HTTP_IDEMPOTENCY_KEY=k).status_code == 201
    # Each caller wrote once; a repeat by each is a replay.
    assert written(world.task) == 3
    for client in (one, two, session):
        again = client.post(url, {"note": "Same key."}, HTTP_IDEMPOTENCY_KEY=k)
        assert again[idempotency.REPLAYED_HEADER] == "true"
    assert written(world.task) == 3
    rows = IdempotencyKey.objects.all()
    assert len(rows) == 3
    assert sorted(r.token_id is None for r in rows) == [False, False, True]


def test_a_failed_request_keeps_nothing_and_frees_its_key(world):
    client = bearer(world.contributor)
    k = key()
    refused = start(world, client, k, expected_from="blocked")
    assert refused.status_code == 409
    assert not IdempotencyKey.objects.exists()
    # The corrected request may reuse the key: it runs, once.
    assert start(world, client, k).status_code == 200
    assert start(world, client, k)[idempotency.REPLAYED_HEADER] == "true"
    assert written(world.task) == 1
    # A read-only token is refused (403) and keeps no key either.
    read_only = bearer(world.contributor, scope=ApiToken.Scope.READ)
    assert start(world, read_only, key()).status_code == 403
    assert IdempotencyKey.objects.count() == 1


def test_keys_and_answers_are_stored_hashed_and_encrypted(world):
    client = bearer(world.contributor)
    k = key()
    response = start(world, client, k)
    row = IdempotencyKey.objects.get()
    stored = f"{row.key_hash} {row.fingerprint} {row.response_headers} {bytes(row.response_body)!r}"
    assert k not in stored and k.encode() not in bytes(row.response_body)
    assert world.task.title.encode() not in bytes(row.response_body)
    assert world.task.title.encode() in response.content
    assert len(row.key_hash) == len(row.fingerprint) == 64
    assert row.response_status == 200 and row.response_headers["ETag"] == response["ETag"]


@pytest.mark.parametrize("value", ["", "   ", "x" * 256, "caf\u00e9", "a\tb"])
def test_a_malformed_key_is_400_naming_the_header(world, value):
    client = bearer(world.contributor)
    response = start(world, client, value)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert written(world.task) == 0


def test_the_quoted_form_of_the_draft_is_the_same_key(world):
    client = bearer(world.contributor)
    k = key()
    assert start(world, client, k).status_code == 200
    assert start(world, client, f'"{k}"')[idempotency.REPLAYED_HEADER] == "true"


def test_keys_expire_after_their_hours_and_beat_deletes_them(world):
    client = bearer(world.coordinator)
    body = {"plan": world.plan.pk, "ref": "EXP-1", "title": "Expiring",
            "lead_organization": world.company.pk, "due_date": "2027-03-31"}  # fmt: skip
    k = key()
    with time_machine.travel(dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC), tick=False):
        assert client.post("/api/v1/tasks/", body, HTTP_IDEMPOTENCY_KEY=k).status_code == 201
    hours = settings.IDEMPOTENCY_KEY_HOURS
    almost = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC) + dt.timedelta(hours=hours, seconds=-1)
    with time_machine.travel(almost, tick=False):
        assert expire_idempotency_keys_task() == 0
        replay = client.post("/api/v1/tasks/", body, HTTP_IDEMPOTENCY_KEY=k)
        assert replay[idempotency.REPLAYED_HEADER] == "true"
    with time_machine.travel(almost + dt.timedelta(seconds=1), tick=False):
        assert expire_idempotency_keys_task() == 1
        assert expire_idempotency_keys_task() == 0  # idempotent
        # The key is free again: this request runs (and the ref is taken: 400, nothing kept).
        again = client.post("/api/v1/tasks/", body, HTTP_IDEMPOTENCY_KEY=k)
        assert again.status_code == 400 and idempotency.REPLAYED_HEADER not in again
    assert Task.objects.filter(ref="EXP-1").count() == 1
    entry = settings.CELERY_BEAT_SCHEDULE["tracker.expire_idempotency_keys"]
    assert entry["task"] == "tracker.expire_idempotency_keys"
    assert entry["options"]["queue"] == settings.HOUSEKEEPING_QUEUE


def test_other_methods_and_anonymous_posts_ignore_the_key(world):
    client = bearer(world.coordinator)
    response = client.patch(
        f"/api/v1/tasks/{world.task.pk}/", {"title": "Renamed"}, HTTP_IDEMPOTENCY_KEY=key()
    )
    assert response.status_code == 200
    anonymous = APIClient().post(
        "/api/v1/auth/token/", {"username": "nobody", "password": "x"}, HTTP_IDEMPOTENCY_KEY=key()
    )
    assert anonymous.status_code == 401
    assert not IdempotencyKey.objects.exists()


def test_the_schema_documents_the_header_on_every_authenticated_post():
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    posts = {path: ops["post"] for path, ops in paths.items() if "post" in ops}
    assert len(posts) > 10
    for path, operation in posts.items():
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        if operation.get("security") == []:
            assert "Idempotency-Key" not in headers, path
            continue
        assert "Idempotency-Key" in headers, path
        assert "422" in operation["responses"] and "409" in operation["responses"], path
    assert "Idempotency-Key" not in str(paths["/api/v1/tasks/{id}/"].get("patch"))


# --- Concurrent duplicates, over HTTP on PostgreSQL -------------------------------------------

# Row locks (FOR UPDATE NOWAIT) need PostgreSQL: skipped without it, failed instead under
# TRACKER_REQUIRE_SERVICES=1 (tests/conftest.py).
postgres_only = pytest.mark.integration


def _post(url, token, k, body):
    return httpx.post(
        url,
        json=body,
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": k},
        timeout=30,
    )


def _waiting_on_a_lock() -> int:
    with connection.cursor() as cursor:
        # Statistics views are a snapshot per transaction, and the caller holds one open.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_duplicate_while_the_first_runs_is_409_and_nothing_is_written_twice(live_server):
    w = world.__wrapped__()
    _, token = api_token_create(
        actor=w.contributor, user=w.contributor, name="t", scope="read_write"
    )
    url = f"{live_server.url}/api/v1/tasks/{w.task.pk}/transition/"
    body = {"to": "in_progress", "expected_from": "planned"}
    k = key()
    answers = {}
    with transaction.atomic():
        # Hold the task's row: the first request takes its key, then waits inside the view.
        Task.objects.select_for_update().get(pk=w.task.pk)
        first = threading.Thread(target=lambda: answers.update(first=_post(url, token, k, body)))
        first.start()
        deadline = time.monotonic() + 20
        while _waiting_on_a_lock() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _waiting_on_a_lock() == 1, f"the first request never reached the lock: {answers}"
        # Two duplicates meanwhile, at once: each is told the key is in progress.
        duplicates = [
            threading.Thread(target=lambda n=n: answers.update({n: _post(url, token, k, body)}))
            for n in ("second", "third")
        ]
        for thread in duplicates:
            thread.start()
        for thread in duplicates:
            thread.join(20)
        for n in ("second", "third"):
            assert answers[n].status_code == 409, answers[n].text
            assert answers[n].headers["Retry-After"] == "1"
            assert answers[n].json()["errors"][0]["field"] == "Idempotency-Key"
    first.join(20)
    assert answers["first"].status_code == 200, answers["first"].text
    later = _post(url, token, k, body)
    assert later.status_code == 200
    assert later.headers[idempotency.REPLAYED_HEADER] == "true"
    assert later.content == answers["first"].content
    assert StatusUpdate.objects.filter(task=w.task, kind="transition").count() == 1


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_simultaneous_duplicates_write_once(live_server):
    w = world.__wrapped__()
    w.task.status = "in_progress"
    w.task.save()
    _, token = api_token_create(
        actor=w.contributor, user=w.contributor, name="t", scope="read_write"
    )
    url = f"{live_server.url}/api/v1/tasks/{w.task.pk}/updates/"
    for round_ in range(3):
        k = key()
        body = {"note": f"Round {round_}", "progress": 10 + round_}
        barrier = threading.Barrier(6)
        answers = []

        def send(k=k, body=body, barrier=barrier, answers=answers):
            barrier.wait()
            answers.append(_post(url, token, k, body))

        threads = [threading.Thread(target=send) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        statuses = sorted(a.status_code for a in answers)
        assert set(statuses) <= {201, 409}, statuses
        assert 201 in statuses
        created = {a.json()["id"] for a in answers if a.status_code == 201}
        assert len(created) == 1, "every 201 is the one update"
        assert StatusUpdate.objects.filter(task=w.task, note=f"Round {round_}").count() == 1


def test_a_retried_import_gets_the_first_report(db):
    """An import (a base64 file in JSON) retried with its keys in another order and other
    spacing is the same request: the first report comes back, nothing is imported twice."""
    import json

    from tests.permission_matrix import build_world
    from tests.plans.test_api_imports import NEW, TASKS, b64

    matrix = build_world()
    client = APIClient()
    client.force_authenticate(matrix.user("coordinator"))
    k = key()
    body = b64(NEW)

    def upload(text):
        return client.post(TASKS, text, content_type="application/json", HTTP_IDEMPOTENCY_KEY=k)

    first = upload(json.dumps(body))
    assert first.status_code == 200 and first.json()["counts"]["create"] == 1, first.content
    second = upload(json.dumps(dict(reversed(list(body.items()))), indent=2))
    assert second[idempotency.REPLAYED_HEADER] == "true"
    # Run again, the import would report the row unchanged: this is the first report.
    assert second.json() == first.json()
    assert Task.objects.filter(ref="API-1").count() == 1


def test_the_problems_speak_the_callers_language(world):
    client = bearer(world.contributor)
    k = key()
    assert start(world, client, k).status_code == 200
    other = client.post(
        f"/api/v1/tasks/{world.task.pk}/transition/",
        {"to": "in_progress", "expected_from": "planned", "note": "Other."},
        HTTP_IDEMPOTENCY_KEY=k,
        HTTP_ACCEPT_LANGUAGE="ko",
    )
    assert other.status_code == 422
    assert "이미 다른 요청" in other.json()["detail"]


def test_a_key_costs_a_fixed_number_of_queries(world):
    from django.test.utils import CaptureQueriesContext

    world.task.status = "in_progress"
    world.task.save()
    client = bearer(world.contributor)
    url = f"/api/v1/tasks/{world.task.pk}/updates/"
    client.post(url, {"note": "warm up"})  # the token's last use is stamped once

    def count(**headers):
        with CaptureQueriesContext(connection) as queries:
            response = client.post(url, {"note": "Same."}, **headers)
        assert response.status_code == 201
        return len(queries)

    plain = count()
    k = key()
    keyed, replay = count(HTTP_IDEMPOTENCY_KEY=k), count(HTTP_IDEMPOTENCY_KEY=k)
    # The token once more, the claim, the lock, the answer (+ SAVEPOINT and RELEASE here, in
    # the test's transaction; a plain BEGIN/COMMIT in production). A replay runs no view
    # (it runs the view's throttles: Redis, no query).
    assert (keyed - plain, replay) == (6, 5)


def test_a_replay_counts_against_the_rate_limits_and_carries_their_headers(world, monkeypatch):
    from django.core.cache import cache

    from tracker.api.throttling import TokenRateThrottle, UserRateThrottle

    cache.clear()
    rates = {"token": "2/minute", "user": "50/minute", "login": "20/minute"}
    for throttle in (TokenRateThrottle, UserRateThrottle):
        monkeypatch.setattr(throttle, "THROTTLE_RATES", rates)
    client = bearer(world.contributor)
    k = key()
    first, replay, refused = (start(world, client, k) for _ in range(3))
    assert first.status_code == 200 and first["RateLimit-Remaining"] == "1"
    assert replay[idempotency.REPLAYED_HEADER] == "true"
    assert (replay["RateLimit-Limit"], replay["RateLimit-Remaining"]) == ("2", "0")
    assert refused.status_code == 429 and idempotency.REPLAYED_HEADER not in refused
    assert refused["Content-Type"] == "application/problem+json"
    assert int(refused["Retry-After"]) == int(refused["RateLimit-Reset"]) > 0
    assert StatusUpdate.objects.filter(task=world.task, kind="transition").count() == 1
    cache.clear()
