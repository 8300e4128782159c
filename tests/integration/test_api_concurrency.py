"""Concurrent writers through the API on real PostgreSQL: If-Match loses no update."""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from plans import services
from plans.models import Task
from tests.factories import OrganizationFactory, PlanFactory, TaskFactory, UserFactory
from tracker.services import api_token_create, system_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
WRITERS = 8


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


def run_threads(target):
    barrier = threading.Barrier(WRITERS)
    results, errors = [None] * WRITERS, []

    def run(index):
        try:
            barrier.wait(timeout=30)
            results[index] = target(index)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(WRITERS)]
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
