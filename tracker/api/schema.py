"""OpenAPI additions: every operation documents the problem-details errors it can return, and
the RateLimit headers of its answers.

The document is linted in CI (openapi-spec-validator in the tests, Redocly's recommended rules
in scripts/api_clients.sh) and two clients are generated from it unpatched (clients/): keep
one content type per request body, one operationId per operation, a security requirement on
every operation, and examples that match their schemas.
"""

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
    "409": "The workflow refuses the change (a forbidden move, a task that has moved "
    "meanwhile, a record still in use), and nothing was written.",
    "412": "If-Match names a version the record no longer has (or is not an ETag of this API); "
    "nothing was written. Read it again and retry with the new ETag.",
    "429": "Too many requests; retry after the Retry-After header.",
}
WRITE_ONLY = {"409", "412"}
# DRF's CursorPagination example: not a URI (a stray quote) and another API's path.
DRF_CURSOR_EXAMPLES = {
    'http://api.example.org/accounts/?cursor=cD00ODY%3D"': (
        "https://tracker.example.org/api/v1/tasks/?cursor=cD0yMDI2LTAxLTAx"
    ),
    "http://api.example.org/accounts/?cursor=cj0xJnA9NDg3": (
        "https://tracker.example.org/api/v1/tasks/?cursor=cj0xJnA9MjAyNi0wMS0wMQ%3D%3D"
    ),
}


def _takes_if_match(operation) -> bool:
    return any(
        p.get("in") == "header" and p.get("name", "").lower() == "if-match"
        for p in operation.get("parameters", [])
    )


# Ids in paths match [0-9]{1,18} (the routers' lookup_value_regex), which drf-spectacular
# documents as a string with a pattern; they are the same integers the bodies carry.
ID_PATTERN = "^[0-9]{1,18}$"
ID_SCHEMA = {"type": "integer", "format": "int64", "minimum": 0, "maximum": 10**18 - 1}


def _integer_ids(operation) -> None:
    for parameter in operation.get("parameters", []):
        schema = parameter.get("schema", {})
        if parameter.get("in") == "path" and schema.get("pattern") == ID_PATTERN:
            parameter["schema"] = dict(ID_SCHEMA)


def _fix_examples(node):
    """DRF's cursor examples replaced by valid URIs, wherever they were copied to."""
    if isinstance(node, dict):
        return {key: _fix_examples(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_fix_examples(value) for value in node]
    if isinstance(node, str):
        return DRF_CURSOR_EXAMPLES.get(node, node)
    return node


# IETF draft-ietf-httpapi-ratelimit-headers, from the tightest counter the request bumped
# (tracker/api/throttling.py, written by tracker.middleware). docs/integration/rate-limits.md.
RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": "Requests allowed in the current window of the tightest limit that "
    "applies (per token, per user, or per client address for password logins).",
    "RateLimit-Remaining": "Requests left in that window (0 when refused with 429).",
    "RateLimit-Reset": "Seconds until that window ends (a whole number).",
}
RETRY_AFTER = "Seconds to wait before retrying (a whole number)."


def add_problem_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    content = {"application/problem+json": {"schema": PROBLEM_REF}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status, description in DESCRIPTIONS.items():
                if status in WRITE_ONLY and method in ("get", "head", "options"):
                    continue
                # 412 answers a stale If-Match: only where the operation takes one.
                if status == "412" and not _takes_if_match(operation):
                    continue
                if status == "404" and "{" not in path and method != "post":
                    continue
                responses.setdefault(status, {"description": description, "content": content})
            _integer_ids(operation)
            # Anonymous operations (logging in) say so: `security: []` rather than nothing.
            operation.setdefault("security", [])
            for status, response in responses.items():
                if status == "401":
                    continue  # a missing or bad token: no counter applies
                headers = response.setdefault("headers", {})
                for name in RATE_LIMIT_HEADERS:
                    headers.setdefault(name, {"$ref": f"#/components/headers/{name}"})
                if status == "429":
                    headers.setdefault("Retry-After", {"$ref": "#/components/headers/Retry-After"})
    components = result["components"].setdefault("headers", {})
    for name, description in {**RATE_LIMIT_HEADERS, "Retry-After": RETRY_AFTER}.items():
        components[name] = {
            "description": description,
            "schema": {"type": "integer", "minimum": 0},
        }
    return _fix_examples(result)
