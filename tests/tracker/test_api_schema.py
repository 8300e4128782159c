"""The OpenAPI document, the docs page and errors outside DRF."""

import io

import pytest
from django.core.management import call_command

from tracker.api.errors import PROBLEM_CONTENT_TYPE

pytestmark = pytest.mark.django_db


def test_schema_generates_without_warnings(tmp_path):
    out = io.StringIO()
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"),
        stdout=out, stderr=out,
    )  # fmt: skip
    schema = (tmp_path / "schema.yml").read_text()
    for operation in (
        "v1_tasks_list",
        "v1_tasks_transition_create",
        "v1_tasks_updates_create",
        "v1_auth_token_create",
        "v1_users_me_retrieve",
        "v1_status_updates_list",
    ):
        assert f"operationId: {operation}" in schema
    assert "application/problem+json" in schema
    assert "summary:" in schema


def test_swagger_ui_serves_its_assets_locally(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "drf_spectacular_sidecar" in html
    assert "cdn" not in html.lower()
    assert client.get("/api/schema/").status_code == 200


@pytest.mark.parametrize(
    "path", ["/api/v1/tasks/0.5/", "/api/v1/nothing/", "/api/v1/tasks/99999999999999999999/"]
)
def test_unknown_api_paths_answer_problem_json(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    assert response.json()["status"] == 404


def test_pages_keep_html_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
