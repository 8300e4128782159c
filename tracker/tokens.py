"""API token format and hashing.

A token reads `jpt_<prefix>_<secret>`: the prefix (8 characters) is stored in clear to find
the row and to show in lists; the secret (43 characters, 256 bits) is stored only as
HMAC-SHA256 keyed with the server-side pepper, so a copy of the database yields no usable
token.
"""

import hashlib
import hmac
import re
import secrets
import string

from django.conf import settings

TOKEN_RE = re.compile(r"^jpt_(?P<prefix>[A-Za-z0-9]{8})_(?P<secret>[A-Za-z0-9_-]{43})$")
_ALPHABET = string.ascii_letters + string.digits


def new_token() -> tuple[str, str, str]:
    """(prefix, secret, the full token to hand to the user once)."""
    prefix = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    secret = secrets.token_urlsafe(32)
    return prefix, secret, f"jpt_{prefix}_{secret}"


def hash_secret(secret: str) -> str:
    pepper = settings.API_TOKEN_PEPPER.encode()
    return hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()


def parse(raw: str) -> tuple[str, str] | None:
    match = TOKEN_RE.match(raw.strip())
    return (match["prefix"], match["secret"]) if match else None


def matches(secret: str, key_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), key_hash)
