"""Coverage-guided fuzzing (atheris / libFuzzer) of every source adapter and the scoring code.

The first input byte picks a source; the rest is the delivery body. Whatever the source's
payload model accepts must go through extraction and canonicalisation without raising, and
every resulting interaction must score without raising; what the model refuses is a
validation error, dead-lettered by the normalizer.

Run: ``python -m tests.fuzz_adapters -runs=100000`` (``make fuzz``; a short run is part of
``make test``, a longer one of ``make reliability``). A crash writes the input to
``crash-*`` and exits non-zero.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from pydantic import ValidationError

    from schemas.events import Interaction
    from services.matcher import scoring
    from services.sources import SOURCES
    from tests.unit.sources.conftest import FIXTURES
    from tests.unit.sources.test_fuzz_adapters import check

NAMES = sorted(SOURCES)


def one_input(data: bytes) -> None:
    if not data:
        return
    source = NAMES[data[0] % len(NAMES)]
    body = data[1:]
    check(source, body)
    # the scoring of any text a source could carry
    text = body.decode("utf-8", "replace")[:5000]
    try:
        i = Interaction(
            source="fuzz",
            event_id="e",
            kind="reply",
            actor="a",
            target="b",
            occurred_at="2026-01-01T00:00:00Z",  # type: ignore[arg-type]
            text=text or None,
        )
    except ValidationError:
        return
    scoring.weight(i)


def seed_corpus() -> str:
    """A corpus directory seeded with the real platform payloads (../shared/fixtures), each
    prefixed with its source's byte, so that mutations start from deliveries that parse."""
    out = Path(tempfile.mkdtemp(prefix="fuzz-corpus-"))
    for i, name in enumerate(NAMES):
        folder = FIXTURES / name
        for n, path in enumerate(sorted(folder.glob("*.json")) if folder.is_dir() else []):
            (out / f"{name}-{n}").write_bytes(bytes([i]) + path.read_bytes())
    generic = NAMES.index("generic")
    example = b'{"source":"x","event_id":"1","kind":"reply","actor":"a","target":"b",'
    example += b'"occurred_at":"2026-01-01T00:00:00Z","text":"how did it go?"}'
    (out / "generic-0").write_bytes(bytes([generic]) + example)
    return str(out)


def main() -> None:
    args = list(sys.argv)
    if not any(not a.startswith("-") for a in args[1:]):
        args.append(seed_corpus())
    atheris.Setup(args, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
