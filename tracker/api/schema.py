"""OpenAPI additions: every operation documents the problem-details errors it can return."""

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string", "example": "about:blank"},
        "title": {"type": "string", "example": "Bad request"},
        "status": {"type": "integer", "example": 400},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string", "example": "due_date"},
                    "message": {"type": "string"},
                },
                "required": ["field", "message"],
            },
        },
    },
    "required": ["type", "title", "status"],
}
DESCRIPTIONS = {
    "400": "Invalid input; `errors` names each field and its problem.",
    "401": "Not authenticated, or the bearer token is invalid, expired or revoked.",
    "403": "Visible, but not allowed for this user or token scope.",
    "404": "Not found, or not visible to this user.",
    "409": "The workflow refuses the change, or the task has moved meanwhile.",
    "412": "If-Match names a version the task no longer has.",
    "429": "Too many requests; retry after the Retry-After header.",
}
WRITE_ONLY = {"409", "412"}


def add_problem_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    content = {"application/problem+json": {"schema": PROBLEM_REF}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status, description in DESCRIPTIONS.items():
                if status in WRITE_ONLY and method in ("get", "head", "options"):
                    continue
                if status == "404" and "{" not in path and method != "post":
                    continue
                responses.setdefault(status, {"description": description, "content": content})
    return result
