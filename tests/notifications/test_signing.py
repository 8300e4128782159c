"""Standard Webhooks signatures: sign, headers and verify."""

import base64
import hashlib
import hmac
import time

from notifications import signing

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
BODY = b'{"type":"task.created","data":{"task":{"id":1}}}'
MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"


def test_new_secret_is_whsec_and_32_random_bytes():
    secret = signing.new_secret()
    assert secret.startswith("whsec_")
    assert len(signing.secret_key(secret)) == 32
    assert signing.new_secret() != secret


def test_signature_is_hmac_sha256_over_id_timestamp_body_with_the_decoded_key():
    timestamp = 1_700_000_000
    expected = base64.b64encode(
        hmac.new(b"k" * 32, f"{MSG_ID}.{timestamp}.".encode() + BODY, hashlib.sha256).digest()
    ).decode()
    assert signing.sign(SECRET, MSG_ID, timestamp, BODY) == f"v1,{expected}"


def test_matches_the_standard_webhooks_reference_vector():
    # From the Standard Webhooks specification's test suite.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    msg_id = "msg_p5jXN8AQM9LWM0D4loKWxJek"
    timestamp = 1614265330
    body = b'{"test": 2432232314}'
    assert (
        signing.sign(secret, msg_id, timestamp, body)
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_round_trip():
    headers = signing.headers(SECRET, MSG_ID, int(time.time()), BODY)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert signing.verify(SECRET, headers, BODY)


def test_header_names_are_case_insensitive():
    headers = signing.headers(SECRET, MSG_ID, int(time.time()), BODY)
    assert signing.verify(SECRET, {k.title(): v for k, v in headers.items()}, BODY)


def test_rejects_a_tampered_body():
    headers = signing.headers(SECRET, MSG_ID, int(time.time()), BODY)
    assert not signing.verify(SECRET, headers, BODY.replace(b'"id":1', b'"id":2'))


def test_rejects_a_changed_message_id_or_timestamp():
    now = int(time.time())
    headers = signing.headers(SECRET, MSG_ID, now, BODY)
    assert not signing.verify(SECRET, {**headers, "webhook-id": "msg_other"}, BODY)
    assert not signing.verify(SECRET, {**headers, "webhook-timestamp": str(now - 1)}, BODY)


def test_rejects_the_wrong_secret():
    headers = signing.headers(SECRET, MSG_ID, int(time.time()), BODY)
    assert not signing.verify(signing.new_secret(), headers, BODY)


def test_rejects_a_stale_or_future_timestamp():
    now = int(time.time())
    stale = signing.headers(SECRET, MSG_ID, now - 301, BODY)
    future = signing.headers(SECRET, MSG_ID, now + 301, BODY)
    assert not signing.verify(SECRET, stale, BODY, now=now)
    assert not signing.verify(SECRET, future, BODY, now=now)
    # Within the tolerance: accepted.
    assert signing.verify(SECRET, signing.headers(SECRET, MSG_ID, now - 299, BODY), BODY, now=now)


def test_rejects_missing_or_malformed_headers():
    headers = signing.headers(SECRET, MSG_ID, int(time.time()), BODY)
    for name in headers:
        assert not signing.verify(SECRET, {k: v for k, v in headers.items() if k != name}, BODY)
    assert not signing.verify(SECRET, {**headers, "webhook-timestamp": "soon"}, BODY)
    unversioned = headers["webhook-signature"].removeprefix("v1,")
    assert not signing.verify(SECRET, {**headers, "webhook-signature": unversioned}, BODY)


def test_several_signatures_one_valid_is_enough():
    old, new = signing.new_secret(), signing.new_secret()
    headers = signing.headers([new, old], MSG_ID, int(time.time()), BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert signing.verify(new, headers, BODY)
    assert signing.verify(old, headers, BODY)
    assert not signing.verify(signing.new_secret(), headers, BODY)
