"""The message catalogues (``services/locale/<language>/LC_MESSAGES/messages.po``) and which
language a person reads.

``make setup`` compiles each ``.po`` into its ``.mo`` (``pybabel compile``); a catalogue whose
``.mo`` is missing or older than its ``.po`` (a checkout before setup ran, an edit since) is
compiled in memory from the ``.po`` instead, with a warning, so a person never reads a stale
sentence. A language is chosen, in order, from the person's preference, then the page's
``Accept-Language``, then English.
"""

from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path
from typing import Final

import structlog
from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from schemas.people import Preferences
from services.common.words import DEFAULT, LANGUAGES, Words

log = structlog.get_logger(__name__)

LOCALE_DIR: Final = Path(__file__).resolve().parent.parent / "locale"
DOMAIN: Final = "messages"
#: the longest Accept-Language header read (browsers send well under 200 characters)
MAX_ACCEPT_LANGUAGE: Final = 512


@functools.cache
def catalogue(language: str) -> gettext.NullTranslations:
    """The compiled catalogue of a shipped language (English: the message ids)."""
    if language not in LANGUAGES:
        raise ValueError(f"no catalogue for {language!r}; shipped: {', '.join(LANGUAGES)}")
    if language == DEFAULT:
        return gettext.NullTranslations()
    folder = LOCALE_DIR / language / "LC_MESSAGES"
    po, mo = folder / f"{DOMAIN}.po", folder / f"{DOMAIN}.mo"
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        with mo.open("rb") as f:
            return Translations(f, domain=DOMAIN)
    log.warning("catalogue_compiled_in_memory", language=language, hint="run make setup")
    with po.open("rb") as f:
        parsed = read_po(f, locale=language, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, parsed, use_fuzzy=False)
    buf.seek(0)
    return Translations(buf, domain=DOMAIN)


def words(language: str | None, zone: str | None = None) -> Words:
    """What a person reads in ``language`` (unknown or None: the default) and ``zone``."""
    lang = language if language in LANGUAGES else DEFAULT
    return Words(lang, catalogue(lang), zone or "UTC")


def negotiate(accept_language: str | None) -> str | None:
    """The shipped language a browser prefers most (RFC 9110 ``Accept-Language``, q-values
    honoured, a region falling back to its language), or None when it names none of them.
    A header longer than `MAX_ACCEPT_LANGUAGE` is not read."""
    if not accept_language or len(accept_language) > MAX_ACCEPT_LANGUAGE:
        return None
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept_language.split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            name, _, value = p.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if tag and q > 0:
            ranked.append((-q, i, tag.strip()))
    for _, _, tag in sorted(ranked):
        if tag == "*":
            return DEFAULT
        try:
            lang = Locale.parse(tag, sep="-" if "-" in tag else "_").language
        except (ValueError, UnknownLocaleError):
            continue
        if lang in LANGUAGES:
            return lang
    return None


def language_for(preference: str | None, accept_language: str | None = None) -> str:
    """The person's own choice, else their browser's, else the default."""
    if preference in LANGUAGES:
        return preference
    return negotiate(accept_language) or DEFAULT


def words_for(prefs: Preferences | None, accept_language: str | None = None) -> Words:
    """What a person reads: in their chosen language (else their browser's, else the
    default) and their time zone. Without a request (an email), pass no ``accept_language``."""
    language = language_for(prefs.language if prefs else None, accept_language)
    return words(language, prefs.time_zone if prefs else None)
