"""Encryption at rest of webhook signing secrets (Fernet: AES-128-CBC + HMAC-SHA256).

The key is `settings.WEBHOOK_ENCRYPTION_KEY`: one Fernet key, or several separated by commas
(the first encrypts; all of them decrypt, so a key can be rotated). When it is empty, the key
is derived from SECRET_KEY (SHA-256, urlsafe base64), and keys derived from
SECRET_KEY_FALLBACKS still decrypt, so rotating SECRET_KEY the Django way keeps the secrets
readable until they are re-encrypted or rotated.
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# Keeps the derived key distinct from any other use of SECRET_KEY.
DERIVATION_SALT = b"notifications.webhook-secret:"
KEY_INVALID = (
    "WEBHOOK_ENCRYPTION_KEY must be Fernet keys (32 url-safe base64-encoded bytes), "
    "separated by commas. Generate one with: python -c "
    '"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)


def derive_key(secret_key: str) -> bytes:
    digest = hashlib.sha256(DERIVATION_SALT + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest)


def _keys() -> list[bytes]:
    configured = getattr(settings, "WEBHOOK_ENCRYPTION_KEY", "") or ""
    if isinstance(configured, list | tuple):
        configured = ",".join(configured)
    keys = [key.strip().encode() for key in configured.split(",") if key.strip()]
    if keys:
        return keys
    return [derive_key(key) for key in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]]


def _fernet() -> MultiFernet:
    try:
        return MultiFernet([Fernet(key) for key in _keys()])
    except ValueError as exc:
        raise ImproperlyConfigured(KEY_INVALID) from exc


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """The plaintext; raises cryptography.fernet.InvalidToken when no key opens it."""
    return _fernet().decrypt(token.encode()).decode()


__all__ = ["InvalidToken", "decrypt", "derive_key", "encrypt"]
