"""OpenAPI additions: every operation documents the problem-details errors it can return, and
the RateLimit headers of its answers."""

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
                if status == "404" and "{" not in path and method != "post":
                    continue
                responses.setdefault(status, {"description": description, "content": content})
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
    return result
