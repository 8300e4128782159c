"""Concurrent writers through the API on real PostgreSQL: If-Match loses no update."""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from plans import services
from plans.models import StatusUpdate, Task
from tests.factories import OrganizationFactory, PlanFactory, TaskFactory, UserFactory
from tracker.services import api_token_create, system_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
WRITERS = 8
CLIENTS = 16  # read-modify-write clients on /updates/, as in the probe (issue 9)


def coordinator_client_factory():
    ministry = OrganizationFactory(kind="ministry")
    plan = PlanFactory(coordinating=[ministry])
    coordinator = UserFactory()
    services.membership_create(
        actor=system_user(), user=coordinator, organization=ministry, role="coordinator"
    )
    _, token = api_token_create(actor=coordinator, user=coordinator, name="c", scope="read_write")

    def client():
        c = APIClient()
        c.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return c

    return plan, client


def run_threads(target, writers=WRITERS):
    barrier = threading.Barrier(writers)
    results, errors = [None] * writers, []

    def run(index):
        try:
            barrier.wait(timeout=30)
            results[index] = target(index)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


def test_same_stale_etag_lets_exactly_one_writer_win():
    plan, client = coordinator_client_factory()
    task = TaskFactory(plan=plan, lead_organization=OrganizationFactory())
    etag = client().get(f"/api/v1/tasks/{task.pk}/")["ETag"]

    def patch(index):
        return (
            client()
            .patch(f"/api/v1/tasks/{task.pk}/", {"title": f"writer {index}"}, HTTP_IF_MATCH=etag)
            .status_code
        )

    codes = run_threads(patch)
    assert sorted(codes) == [200] + [412] * (WRITERS - 1)
    task.refresh_from_db()
    assert task.version == 2
    winner = codes.index(200)
    assert task.title == f"writer {winner}"


def test_read_modify_write_with_if_match_loses_no_update():
    plan, client = coordinator_client_factory()
    task = TaskFactory(plan=plan, lead_organization=OrganizationFactory(), description="")
    start_version = task.version

    def append(index):
        api = client()
        for _attempt in range(200):
            current = api.get(f"/api/v1/tasks/{task.pk}/")
            description = current.json()["description"] + f"[{index}]"
            response = api.patch(
                f"/api/v1/tasks/{task.pk}/",
                {"description": description},
                HTTP_IF_MATCH=current["ETag"],
            )
            if response.status_code == 200:
                return True
            assert response.status_code == 412, response.content
        return False

    assert all(run_threads(append))
    task = Task.objects.get(pk=task.pk)
    assert sorted(task.description.strip("[]").split("][")) == sorted(
        str(i) for i in range(WRITERS)
    )
    assert task.version == start_version + WRITERS


def _progress_writer(task, client, rounds, barrier=None):
    """A client looping GET -> POST /updates/ with progress + 1 and If-Match. With a barrier,
    every client reads before anyone writes, and writes before anyone reads again."""

    def write(index):
        api, codes = client(), []
        try:
            for _round in range(rounds):
                current = api.get(f"/api/v1/tasks/{task.pk}/")
                if barrier is not None:
                    barrier.wait(timeout=60)
                response = api.post(
                    f"/api/v1/tasks/{task.pk}/updates/",
                    {"progress": current.json()["progress"] + 1},
                    HTTP_IF_MATCH=current["ETag"],
                )
                assert response.status_code in (201, 412), response.content
                if response.status_code == 201:
                    assert response["ETag"] != current["ETag"]
                codes.append(response.status_code)
                if barrier is not None:
                    barrier.wait(timeout=60)
        except Exception:
            if barrier is not None:
                barrier.abort()  # the others stop at once instead of waiting out the timeout
            raise
        return codes

    return write


def _in_progress_task(plan):
    """A task open for progress, and its history count; every write may succeed below 100."""
    task = TaskFactory(plan=plan, lead_organization=OrganizationFactory(), status="in_progress")
    task.refresh_from_db()
    assert task.progress + CLIENTS * 5 <= 100
    return task, StatusUpdate.objects.filter(task=task).count()


def _assert_no_update_lost(start, history, codes) -> int:
    written = sum(code == 201 for client_codes in codes for code in client_codes)
    assert written >= 1
    task = Task.objects.get(pk=start.pk)
    assert task.version == start.version + written
    assert task.progress == start.progress + written
    assert StatusUpdate.objects.filter(task=task).count() == history + written
    return written


def test_read_modify_write_clients_on_updates_lose_no_progress():
    """16 clients each reading then writing progress + 1 with If-Match, free-running: every
    write either lands on the version it read (201) or is refused (412); none is lost."""
    plan, client = coordinator_client_factory()
    task, history = _in_progress_task(plan)

    codes = run_threads(_progress_writer(task, client, rounds=3), writers=CLIENTS)

    _assert_no_update_lost(task, history, codes)


def test_clients_that_all_read_the_same_version_let_exactly_one_write_per_round():
    """In lockstep (everyone reads, then everyone writes), each round has one winner and 15
    refusals; without If-Match honoured all 16 would be answered 201."""
    plan, client = coordinator_client_factory()
    task, history = _in_progress_task(plan)
    rounds = 2

    codes = run_threads(
        _progress_writer(task, client, rounds, barrier=threading.Barrier(CLIENTS)),
        writers=CLIENTS,
    )

    assert _assert_no_update_lost(task, history, codes) == rounds
    assert [sorted(client_codes[r] for client_codes in codes) for r in range(rounds)] == [
        [201] + [412] * (CLIENTS - 1)
    ] * rounds
