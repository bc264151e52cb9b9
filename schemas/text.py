"""Ids and names that are shown to people: refused when they could pass for someone else.

Two rules, from Unicode's security mechanisms (UTS #39) and bidi algorithm (UAX #9):

- **Nothing invisible or direction-changing.** Controls, format characters (right-to-left
  overrides and isolates U+202A-202E and U+2066-2069, zero-width spaces and joiners, the
  byte-order mark), line and paragraph separators, private-use, surrogates and unassigned
  code points are refused: they let "ann\\u202egnp.exe" read as something else, or two
  different ids look the same.
- **No look-alike mix of scripts.** Within each run of letters and digits, the scripts
  must form one of UTS #39's "highly restrictive" sets (one script, or Latin with Han and
  Japanese kana, Bopomofo, or Hangul), unless no character of the mix can be confused with
  another script's (``confusable_homoglyphs``, built from Unicode's confusables.txt). So
  "paypal" spelt with a Cyrillic "a" (U+0430) is refused; "Анна", "田中さん" and "web:Анна"
  are not.

Pure ASCII (nearly every platform id) passes at the cost of one ``isascii``.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from confusable_homoglyphs import categories, confusables

UNSAFE_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"})
_NEUTRAL: Final = frozenset({"COMMON", "INHERITED"})
_RESTRICTIVE: Final = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)
_RUNS: Final = re.compile(r"\w+")


def unsafe_character(value: str) -> str | None:
    """The first invisible or direction-changing character of ``value``, described."""
    for c in value:
        if c.isascii() and c.isprintable():
            continue
        if unicodedata.category(c) in UNSAFE_CATEGORIES or c == "\x7f":
            return f"U+{ord(c):04X} ({unicodedata.name(c, 'unnamed')})"
    return None


def lookalike_run(value: str) -> str | None:
    """The first run of letters and digits that mixes scripts so as to look like another."""
    for run in _RUNS.findall(value):
        if run.isascii():
            continue
        scripts = {categories.alias(c) for c in run} - _NEUTRAL
        if len(scripts) <= 1 or any(scripts <= allowed for allowed in _RESTRICTIVE):
            continue
        if confusables.is_dangerous(run):
            return str(run)
    return None


def shown_safely(value: str) -> str:
    """``value`` if it can be shown to people as it is; else a ValueError saying why."""
    if value.isascii():
        if value.isprintable():  # both in C: the common case costs next to nothing
            return value
        bad = next(c for c in value if not c.isprintable())
        raise ValueError(f"contains the control character U+{ord(bad):04X}")
    bad_char = unsafe_character(value)
    if bad_char is not None:
        raise ValueError(
            f"contains {bad_char}, an invisible or direction-changing character that would "
            "let it pass for another"
        )
    run = lookalike_run(value)
    if run is not None:
        raise ValueError(
            f"mixes scripts in {run!r} with letters that look like another script's "
            "(a look-alike of another name)"
        )
    return value
