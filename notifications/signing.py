"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

A secret is "whsec_" + base64 of 32 random bytes; the HMAC key is those bytes. Each request
carries `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`: one or more
space-separated "v1,<base64 HMAC-SHA256 of '{id}.{timestamp}.{body}'>" (several while a
rotated secret is still honoured). Receivers use `verify` (or any Standard Webhooks library).
"""

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping
from secrets import token_bytes

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
VERSION = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str | bytes) -> bytes:
    """The HMAC key of a secret: its base64-decoded bytes (raw bytes are taken as they are)."""
    if isinstance(secret, bytes):
        return secret
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def _signature(secret: str | bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{int(timestamp)}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def sign(secret: str | bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value for one secret: "v1,<base64 signature>"."""
    return f"{VERSION},{_signature(secret, msg_id, timestamp, body)}"


def headers(
    secret: str | bytes | Iterable[str | bytes], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three signature headers; given several secrets, one signature per secret."""
    keys = [secret] if isinstance(secret, str | bytes) else list(secret)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": " ".join(sign(key, msg_id, timestamp, body) for key in keys),
    }


def _header(received: Mapping[str, str], name: str) -> str | None:
    for key, value in received.items():
        if key.lower() == name:
            return value
    return None


def verify(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """True when one of the request's v1 signatures matches and its timestamp is within
    `tolerance` seconds of `now` (either way, against replays). Header names are matched
    case-insensitively; the comparison is constant-time."""
    msg_id = _header(headers, "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    if not msg_id or not timestamp or not signatures:
        return False
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent_at) > tolerance:
        return False
    expected = _signature(secret, msg_id, sent_at, body).encode()
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == VERSION and hmac.compare_digest(value.encode(), expected):
            return True
    return False
