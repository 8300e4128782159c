"""/api/schema/ as generated clients need it (issue 14): valid OpenAPI (openapi-spec-validator),
JSON-only request bodies, one operationId each, 409/412 where they happen, integer ids.
scripts/api_clients.sh (in .ci/run) lints the live document with Redocly's rules as well and
drives two clients generated from it."""

import io
import json
from collections import Counter

import pytest
from django.core.management import call_command
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    out = io.StringIO()
    with django_db_blocker.unblock():
        call_command("spectacular", "--format", "openapi-json", stdout=out)
    return json.loads(out.getvalue())


def operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_the_document_is_valid_openapi(schema):
    validate(schema)  # raises with the first problem it finds


def test_every_request_body_is_json_only(schema):
    bodies = {
        (method, path): sorted(operation["requestBody"]["content"])
        for path, method, operation in operations(schema)
        if "requestBody" in operation
    }
    assert bodies  # the API does take bodies
    assert {key: types for key, types in bodies.items() if types != ["application/json"]} == {}
    # The spreadsheet imports included: base64 in JSON, no multipart.
    assert ("post", "/api/v1/tasks/import/") in bodies


def test_operation_ids_are_unique_and_every_operation_states_its_security(schema):
    ids = Counter(operation["operationId"] for _, _, operation in operations(schema))
    assert [name for name, count in ids.items() if count > 1] == []
    assert [op["operationId"] for _, _, op in operations(schema) if "security" not in op] == []
    login = schema["paths"]["/api/v1/auth/token/"]["post"]
    assert login["security"] == []  # anonymous


def takes_if_match(operation) -> bool:
    return any(p["in"] == "header" and p["name"] == "If-Match" for p in operation["parameters"])


def test_412_is_documented_exactly_where_if_match_is_taken(schema):
    for path, method, operation in operations(schema):
        operation.setdefault("parameters", [])
        assert ("412" in operation["responses"]) == takes_if_match(operation), (method, path)
    transition = schema["paths"]["/api/v1/tasks/{id}/transition/"]["post"]
    progress = schema["paths"]["/api/v1/tasks/{id}/updates/"]["post"]
    for operation in (transition, progress):
        for status in ("409", "412"):
            content = operation["responses"][status]["content"]
            assert content == {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            }


def test_deletes_document_409(schema):
    deletes = [(path, op) for path, method, op in operations(schema) if method == "delete"]
    assert deletes
    for path, operation in deletes:
        assert "409" in operation["responses"], path


def test_path_ids_are_integers_and_examples_are_uris(schema):
    for path, method, operation in operations(schema):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path" and parameter["name"] == "id":
                assert parameter["schema"]["type"] == "integer", (method, path)
    text = json.dumps(schema)
    assert "api.example.org" not in text  # DRF's cursor examples (one is not a URI)
