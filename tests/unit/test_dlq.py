"""Dead letters keep no message text (pure: the redaction, without Kafka; the real path is
tests/integration/test_sources.py)."""

from __future__ import annotations

import orjson

from services.common.dlq import dead_letter_headers, redacted, redacted_error


def test_message_text_is_redacted_wherever_a_source_puts_it() -> None:
    payload = {
        "event": {"type": "message", "text": "meet me at 5", "user": "U1"},
        "d": {"content": "see you", "author": {"id": "1"}},
        "children": [{"data": {"body": "a long answer", "selftext": "", "score": 3}}],
        "duration_s": 62,
    }
    out = orjson.loads(redacted(orjson.dumps(payload)) or b"")
    assert out["event"] == {"type": "message", "text": "[redacted: 12 characters]", "user": "U1"}
    assert out["d"]["content"] == "[redacted: 7 characters]" and out["d"]["author"] == {"id": "1"}
    assert out["children"][0]["data"] == {
        "body": "[redacted: 13 characters]",
        "selftext": "[redacted: 0 characters]",
        "score": 3,
    }
    assert out["duration_s"] == 62
    assert redacted(b"\xff not json at all: my secret") == b"[redacted: 28 bytes, not JSON]"
    assert redacted(None) is None


def test_validation_errors_lose_the_input_they_quote() -> None:
    error = (
        "1 validation error for Interaction\ntext\n  String should have at most 4000 "
        "characters [type=string_too_long, input_value='my secret, words', input_type=str]"
    )
    assert "secret" not in redacted_error(error)
    assert "input_value=[redacted], input_type=str" in redacted_error(error)
    headers = dict(
        dead_letter_headers(
            reason="schema", error=error, topic="t", partition=0, offset=1, service="s"
        )
    )
    assert b"secret" not in headers["dlq.error"]
