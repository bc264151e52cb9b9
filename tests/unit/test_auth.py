"""Webhook signatures: accepted when right, refused with a reason when anything is off."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from services.ingest import auth

BODY = b'{"hello": "world"}'
NOW = 1_800_000_000.0


def test_signed_timestamp_round_trip_and_rotation() -> None:
    sig = auth.sign(BODY, "old-secret", int(NOW))
    headers = {"x-realconnect-signature": sig}
    # two active secrets: a sender still on the old one is accepted during rotation
    delivery = auth.verify_signed(
        headers, BODY, ["new-secret", "old-secret"], now=NOW, tolerance=300
    )
    assert delivery == sig.split("v1=")[1]
    headers["x-realconnect-delivery"] = "abc"
    assert auth.verify_signed(headers, BODY, ["old-secret"], now=NOW, tolerance=300) == "abc"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing"),
        ({"x-realconnect-signature": "garbage"}, "malformed"),
        ({"x-realconnect-signature": auth.sign(BODY, "wrong", int(NOW))}, "does not match"),
        ({"x-realconnect-signature": auth.sign(BODY, "s", int(NOW) - 301)}, "tolerance"),
        ({"x-realconnect-signature": auth.sign(BODY, "s", int(NOW) + 301)}, "tolerance"),
        ({"x-realconnect-signature": auth.sign(BODY + b" ", "s", int(NOW))}, "does not match"),
        ({"x-realconnect-signature": "t=abc,v1=00"}, "timestamp"),
    ],
)
def test_signed_timestamp_refusals(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(auth.AuthError, match=reason):
        auth.verify_signed(headers, BODY, ["s"], now=NOW, tolerance=300)


def test_slack_v0_signature() -> None:
    h = {k.lower(): v for k, v in auth.sign_slack(BODY, "slack-s", int(NOW)).items()}
    assert auth.verify_slack(h, BODY, ["slack-s"], now=NOW, tolerance=300)
    with pytest.raises(auth.AuthError, match="does not match"):
        auth.verify_slack(h, BODY, ["other"], now=NOW, tolerance=300)
    with pytest.raises(auth.AuthError, match="tolerance"):
        auth.verify_slack(h, BODY, ["slack-s"], now=NOW + 600, tolerance=300)
    with pytest.raises(auth.AuthError, match="X-Slack-Signature"):
        auth.verify_slack(
            {"x-slack-request-timestamp": str(int(NOW))}, BODY, ["slack-s"], now=NOW, tolerance=300
        )


def test_github_sha256_signature_and_delivery() -> None:
    h = {"x-hub-signature-256": auth.sign_github(BODY, "gh"), "x-github-delivery": "uuid-1"}
    assert auth.verify_github(h, BODY, ["gh"]) == "uuid-1"
    with pytest.raises(auth.AuthError, match="does not match"):
        auth.verify_github(h, BODY, ["nope"])
    with pytest.raises(auth.AuthError, match="X-GitHub-Delivery"):
        auth.verify_github({"x-hub-signature-256": h["x-hub-signature-256"]}, BODY, ["gh"])
    with pytest.raises(auth.AuthError, match="X-Hub-Signature-256"):
        auth.verify_github({"x-github-delivery": "u"}, BODY, ["gh"])


def test_refusals_never_carry_the_secret() -> None:
    secret = "super-secret-value-123"
    with capture_logs() as logs, pytest.raises(auth.AuthError) as exc:
        auth.verify_signed(
            {"x-realconnect-signature": auth.sign(BODY, "x", int(NOW))},
            BODY,
            [secret],
            now=NOW,
            tolerance=300,
        )
    assert secret not in str(exc.value)
    assert secret not in repr(logs)
