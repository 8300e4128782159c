"""Verify a webhook from the joint action plan tracker (Standard Webhooks signatures).

Python 3.9+, standard library only. Call `verify()` with the secret shown when the webhook was
created (or rotated), the request's headers and its RAW body bytes, before parsing the JSON:

    if not verify(SECRET, request.headers, request.body):   # Django: request.body
        return HttpResponse(status=401)                      # Flask: request.get_data()
    event = json.loads(request.body)

From a shell: `python verify_webhook.py SECRET HEADERS.json BODY-FILE` exits 0 when valid.
"""

import base64
import hashlib
import hmac
import json
import sys
import time


def verify(secret, headers, body, tolerance_seconds=300, now=None):
    """True when one of the `webhook-signature` values matches and `webhook-timestamp` is
    within `tolerance_seconds` of now. `headers`: any mapping (names in any case)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id")
    timestamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not msg_id or not timestamp or not signatures:
        return False
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent_at) > tolerance_seconds:
        return False  # too old or from the future: a replay
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{sent_at}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    # Several signatures (space-separated) while a rotated secret is still honoured.
    for candidate in signatures.split():
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False


if __name__ == "__main__":
    secret, headers_file, body_file = sys.argv[1:4]
    with open(headers_file, encoding="utf-8") as handle:
        received_headers = json.load(handle)
    with open(body_file, "rb") as handle:
        received_body = handle.read()
    valid = verify(secret, received_headers, received_body)
    print("valid" if valid else "invalid")
    sys.exit(0 if valid else 1)
