"""What an integrator does first, through the Python client generated unpatched from the live
/api/schema/ by openapi-python-client (scripts/api_clients.sh generates it into
var/clients/python/tracker_client and runs this against a live server).

    TRACKER_URL=http://127.0.0.1:8000 TRACKER_CLIENT_DIR=var/clients/python \
        var/clientgen/bin/python clients/python/smoke.py

Logs in (a read-write token for a demo coordinator), lists tasks with filters and follows the
cursor, reads a task and its ETag, moves it with If-Match, reports progress, then gets a 412
(a stale ETag) and a 409 (a move the workflow refuses) back as typed problems, and puts the
task back as it was so the script can run again. Exits non-zero at the first surprise.
"""

import os
import sys
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, os.environ.get("TRACKER_CLIENT_DIR", "var/clients/python"))

from tracker_client import AuthenticatedClient, Client  # noqa: E402
from tracker_client.api.v1 import (  # noqa: E402
    v1_auth_token_create,
    v1_tasks_list,
    v1_tasks_retrieve,
    v1_tasks_transition_create,
    v1_tasks_updates_create,
)
from tracker_client.models import (  # noqa: E402
    LoginRequest,
    NewApiToken,
    PaginatedTaskList,
    Problem,
    ScopeEnum,
    StatusUpdateCreateRequest,
    Task,
    TaskStatusEnum,
    TransitionRequest,
)
from tracker_client.models.v1_tasks_list_status_item import V1TasksListStatusItem  # noqa: E402
from tracker_client.types import UNSET  # noqa: E402

BASE = os.environ.get("TRACKER_URL", "http://127.0.0.1:8000")
USERNAME = os.environ.get("TRACKER_USER", "coordinator.kr")
PASSWORD = os.environ.get("TRACKER_PASSWORD", "demo")
PAGE_SIZE = 5


def check(condition, what):
    if not condition:
        raise SystemExit(f"python client: FAILED: {what}")
    print(f"python client: ok: {what}")


def main() -> None:
    login = v1_auth_token_create.sync_detailed(
        client=Client(base_url=BASE, raise_on_unexpected_status=True),
        body=LoginRequest(username=USERNAME, password=PASSWORD, scope=ScopeEnum.READ_WRITE),
    )
    check(
        login.status_code == 201 and isinstance(login.parsed, NewApiToken),
        "log in (POST /api/v1/auth/token/)",
    )
    api = AuthenticatedClient(
        base_url=BASE, token=login.parsed.token, raise_on_unexpected_status=True
    )

    # Filters and the cursor: every page through `next`, no task twice.
    seen, pages, cursor = [], 0, UNSET
    while True:
        page = v1_tasks_list.sync(
            client=api,
            status=[V1TasksListStatusItem.IN_PROGRESS],
            page_size=PAGE_SIZE,
            cursor=cursor,
        )
        check(isinstance(page, PaginatedTaskList), f"list page {pages + 1}")
        pages += 1
        seen += [task.id for task in page.results]
        assert all(task.status == TaskStatusEnum.IN_PROGRESS for task in page.results)
        if not page.next_:
            break
        cursor = parse_qs(urlsplit(page.next_).query)["cursor"][0]
    distinct = len(seen) == len(set(seen))
    check(pages >= 2 and distinct and len(seen) > PAGE_SIZE, f"{len(seen)} tasks, {pages} pages")

    # Read one and its ETag; move it with If-Match; report progress with the new ETag.
    read = v1_tasks_retrieve.sync_detailed(client=api, id=seen[0])
    task, etag = read.parsed, read.headers["ETag"]
    check(isinstance(task, Task) and etag.startswith('"'), f"read task {task.ref}, ETag {etag}")
    moved = v1_tasks_transition_create.sync_detailed(
        client=api,
        id=task.id,
        if_match=etag,
        body=TransitionRequest(
            to=TaskStatusEnum.AT_RISK,
            expected_from=TaskStatusEnum.IN_PROGRESS,
            note="Supplier delay (python client smoke test).",
        ),
    )
    check(
        moved.status_code == 200 and moved.parsed.status == TaskStatusEnum.AT_RISK,
        "transition in_progress -> at_risk with If-Match",
    )
    new_etag = moved.headers["ETag"]
    progress = v1_tasks_updates_create.sync_detailed(
        client=api,
        id=task.id,
        if_match=new_etag,
        body=StatusUpdateCreateRequest(note="Half way (python client).", progress=50),
    )
    check(progress.status_code == 201, "progress posted with If-Match")
    new_etag = progress.headers["ETag"]

    # Typed errors: a stale ETag is a 412, a move the workflow refuses a 409.
    stale = v1_tasks_transition_create.sync_detailed(
        client=api,
        id=task.id,
        if_match=etag,
        body=TransitionRequest(to=TaskStatusEnum.IN_PROGRESS, expected_from=TaskStatusEnum.AT_RISK),
    )
    check(
        stale.status_code == 412
        and isinstance(stale.parsed, Problem)
        and stale.parsed.status == 412,
        f"stale If-Match -> 412 Problem ({stale.parsed.title})",
    )
    refused = v1_tasks_transition_create.sync_detailed(
        client=api,
        id=task.id,
        if_match=new_etag,
        body=TransitionRequest(to=TaskStatusEnum.VERIFIED, expected_from=TaskStatusEnum.AT_RISK),
    )
    check(
        refused.status_code == 409
        and isinstance(refused.parsed, Problem)
        and refused.parsed.status == 409,
        f"at_risk -> verified -> 409 Problem ({refused.parsed.detail})",
    )

    back = v1_tasks_transition_create.sync_detailed(
        client=api,
        id=task.id,
        if_match=new_etag,
        body=TransitionRequest(to=TaskStatusEnum.IN_PROGRESS, expected_from=TaskStatusEnum.AT_RISK),
    )
    check(back.status_code == 200, "moved back to in_progress")
    print("python client: all green")


if __name__ == "__main__":
    main()
