"""Webhook signatures: the device API document's `X-Prynt-Signature` and Standard Webhooks.

`X-Prynt-Signature` is the hex HMAC-SHA256 of the raw body keyed with the endpoint's secret as
written (its UTF-8 bytes). The Standard Webhooks headers sign `id.timestamp.body` with the
base64-decoded part of a `whsec_…` secret, so receivers can use the `standardwebhooks` or `svix`
verifiers, which also refuse stale timestamps (replays).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import secrets

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh `whsec_` secret: 24 random bytes, base64, as Standard Webhooks expects."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


@functools.lru_cache(maxsize=1024)
def standard_key(secret: str) -> bytes:
    """The HMAC key of the Standard Webhooks signature.

    A `whsec_<base64>` secret is decoded, as the reference verifiers do; any other secret a user
    chose is used as its UTF-8 bytes (verifiers accept the key as bytes for that case).
    """
    if secret.startswith(SECRET_PREFIX):
        try:
            key = base64.b64decode(secret[len(SECRET_PREFIX) :] + "==", validate=False)
        except (binascii.Error, ValueError):
            key = b""
        if key:
            return key
    return secret.encode()


def prynt_signature(secret: str, body: bytes) -> str:
    return hmac.digest(secret.encode(), body, "sha256").hex()


def standard_signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.digest(key, signed, "sha256")).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> list[tuple[bytes, bytes]]:
    """Every signature header of one attempt (the timestamp is the attempt's own)."""
    return [
        (b"x-prynt-signature", prynt_signature(secret, body).encode()),
        (b"webhook-id", msg_id.encode()),
        (b"webhook-timestamp", str(timestamp).encode()),
        (
            b"webhook-signature",
            standard_signature(standard_key(secret), msg_id, timestamp, body).encode(),
        ),
    ]
