"""Webhook authentication (pure: the standard library, and PyNaCl for Ed25519). Raw bytes
are verified before any parsing; every comparison is constant-time; each source may have two
active secrets so they can be rotated. Secrets are never logged or echoed.

- Slack: ``X-Slack-Signature: v0=<hex>``, HMAC-SHA256 over
  ``v0:{X-Slack-Request-Timestamp}:{body}``,
  timestamp within the tolerance (300 s).
- GitHub: ``X-Hub-Signature-256: sha256=<hex>``, HMAC-SHA256 over the body; the delivery id is
  ``X-GitHub-Delivery``.
- Discord interactions: ``X-Signature-Ed25519`` (hex), Ed25519 by the application's public
  key over ``{X-Signature-Timestamp}{body}``, the timestamp within the tolerance.
- Every other source: ``X-Realconnect-Signature: t=<unix seconds>,v1=<hex>`` (several ``v1``
  allowed), HMAC-SHA256 over ``"{t}.{body}"``, ``t`` within the tolerance. The delivery id is
  ``X-Realconnect-Delivery`` when sent, else the signature itself.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Final

SIGNATURE_HEADER: Final = "x-realconnect-signature"
DELIVERY_HEADER: Final = "x-realconnect-delivery"


class AuthError(Exception):
    """Why a request is not authentic (safe to show: no secret material)."""


def _mac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _any_matches(candidates: Sequence[str], secrets: Sequence[str], message: bytes) -> bool:
    ok = False
    for secret in secrets:
        expected = _mac(secret, message)
        for c in candidates:
            # no early exit: every pair is compared, in constant time each
            ok |= hmac.compare_digest(expected.encode(), c.encode())
    return ok


def _timestamp(raw: str | None, now: float, tolerance: float) -> int:
    # ASCII digits only: "²" is a Unicode digit that int() refuses (it was a 500)
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise AuthError("missing or malformed timestamp")
    t = int(raw)
    if abs(now - t) > tolerance:
        raise AuthError(f"timestamp outside the {int(tolerance)} s tolerance")
    return t


def verify_slack(
    headers: Mapping[str, str], body: bytes, secrets: Sequence[str], *, now: float, tolerance: float
) -> str:
    ts = headers.get("x-slack-request-timestamp")
    _timestamp(ts, now, tolerance)
    sig = headers.get("x-slack-signature", "")
    if not sig.startswith("v0="):
        raise AuthError("missing or malformed X-Slack-Signature")
    if not _any_matches([sig[3:]], secrets, b"v0:" + (ts or "").encode() + b":" + body):
        raise AuthError("signature does not match")
    return f"{ts}:{sig[3:]}"


def verify_github(headers: Mapping[str, str], body: bytes, secrets: Sequence[str]) -> str:
    sig = headers.get("x-hub-signature-256", "")
    if not sig.startswith("sha256="):
        raise AuthError("missing or malformed X-Hub-Signature-256")
    if not _any_matches([sig[7:]], secrets, body):
        raise AuthError("signature does not match")
    delivery = headers.get("x-github-delivery", "")
    if not delivery or len(delivery) > 128:
        raise AuthError("missing X-GitHub-Delivery")
    return delivery


def verify_signed(
    headers: Mapping[str, str], body: bytes, secrets: Sequence[str], *, now: float, tolerance: float
) -> str:
    raw = headers.get(SIGNATURE_HEADER)
    if not raw:
        raise AuthError("missing X-Realconnect-Signature")
    parts = [p.strip().partition("=") for p in raw.split(",")]
    t = next((v for k, _, v in parts if k == "t"), None)
    candidates = [v for k, _, v in parts if k == "v1" and v][:4]
    if not candidates:
        raise AuthError("malformed X-Realconnect-Signature (want t=...,v1=...)")
    _timestamp(t, now, tolerance)
    if not _any_matches(candidates, secrets, f"{t}.".encode() + body):
        raise AuthError("signature does not match")
    delivery = headers.get(DELIVERY_HEADER, "")
    return delivery[:128] if delivery else candidates[0]


def signed_content(scheme: str, headers: Mapping[str, str], body: bytes) -> str:
    """What the signature covers, hashed: a delivery *is* its signed content. Sent again
    under another ``X-Realconnect-Delivery`` or ``X-GitHub-Delivery``, or with an extra
    ``v1=`` value, it is the same delivery (a replay). Call after the signature verified."""
    if scheme == "slack":
        signed = b"v0:" + headers.get("x-slack-request-timestamp", "").encode() + b":" + body
    elif scheme == "github":
        signed = body  # GitHub signs the body alone
    else:
        raw = headers.get(SIGNATURE_HEADER, "")
        t = next(
            (v for k, _, v in (p.strip().partition("=") for p in raw.split(",")) if k == "t"), ""
        )
        signed = f"{t}.".encode() + body
    return hashlib.sha256(signed).hexdigest()


def sign(body: bytes, secret: str, t: int) -> str:
    """The ``X-Realconnect-Signature`` value for ``body`` (for senders and tests)."""
    return f"t={t},v1={_mac(secret, f'{t}.'.encode() + body)}"


def sign_slack(body: bytes, secret: str, t: int) -> dict[str, str]:
    return {
        "X-Slack-Request-Timestamp": str(t),
        "X-Slack-Signature": "v0=" + _mac(secret, f"v0:{t}:".encode() + body),
    }


def sign_github(body: bytes, secret: str) -> str:
    return "sha256=" + _mac(secret, body)


def verify_discord(
    headers: Mapping[str, str], body: bytes, public_key: str, *, now: float, tolerance: float
) -> None:
    """An interaction Discord signed with the application's key (``public_key``, hex)."""
    from nacl.exceptions import BadSignatureError
    from nacl.signing import VerifyKey

    ts = headers.get("x-signature-timestamp")
    _timestamp(ts, now, tolerance)
    sig = headers.get("x-signature-ed25519", "")
    if len(sig) != 128 or not all(c in "0123456789abcdefABCDEF" for c in sig):
        raise AuthError("missing or malformed X-Signature-Ed25519")
    try:
        VerifyKey(bytes.fromhex(public_key)).verify((ts or "").encode() + body, bytes.fromhex(sig))
    except (BadSignatureError, ValueError) as exc:
        raise AuthError("signature does not match") from exc
