"""The message catalogues (issue 41): every message the code and the templates say is in
every shipped language, translated, with the same placeholders; the language a person reads
is chosen as documented; plural rules are each language's own."""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import get_args

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from schemas.people import Preferences
from services.common import i18n
from services.common.words import LANGUAGES
from services.matcher import sentences

ROOT = Path(__file__).resolve().parents[2]
TRANSLATED = [lang for lang in LANGUAGES if lang != "en"]


def _extracted() -> Catalog:
    """What `make messages` extracts (services/locale/babel.cfg, the N_ marker)."""
    cat = Catalog()
    method_map = [("services/**.py", "python"), ("services/feeds/templates/**.html", "jinja2")]
    options = {"services/feeds/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    keywords = {
        "gettext": None,
        "ngettext": (1, 2),
        "pgettext": ((1, "c"), 2),
        "_": None,
        "N_": None,
    }
    for _file, _line, message, _comments, context in extract_from_dir(
        str(ROOT), method_map, options, keywords=keywords
    ):
        cat.add(message, None, context=context)
    return cat


@pytest.fixture(scope="module")
def extracted() -> Catalog:
    return _extracted()


def _po(lang: str) -> Catalog:
    path = ROOT / "services/locale" / lang / "LC_MESSAGES/messages.po"
    with path.open("rb") as f:
        return read_po(f, locale=lang)


def _placeholders(text: str) -> set[str]:
    brace = {f"{{{name}}}" for _, name, _, _ in string.Formatter().parse(text) if name}
    percent = set(re.findall(r"%\(\w+\)s", text))
    return brace | percent


def test_the_extracted_messages_are_many(extracted: Catalog) -> None:
    ids = {m.id if isinstance(m.id, str) else m.id[0] for m in extracted if m.id}
    # the sentences, the page, the emails and the why-not answers are all extracted
    for said in (
        "You two have traded {what} over {duration} on {where}.",
        "Why we suggest this",
        "Hello {name},",
        "Not now. We can't say more about this one.",
        "Form expired",  # a Problem's title, marked with N_ and said on the page
    ):
        assert said in ids
    assert len(ids) > 150


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_message_is_translated_in_every_language(extracted: Catalog, lang: str) -> None:
    po = _po(lang)
    missing, untranslated, fuzzy, wrong_placeholders = [], [], [], []
    for m in extracted:
        if not m.id:
            continue
        t = po.get(m.id, context=m.context)
        if t is None:
            missing.append(m.id)
            continue
        if t.fuzzy:
            fuzzy.append(m.id)
        strings = t.string if isinstance(t.string, tuple) else (t.string,)
        if not all(strings):
            untranslated.append(m.id)
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        wanted = set().union(*(_placeholders(i) for i in ids))
        for s in strings:
            # a plural form may spell out its number ("one") but never invents a placeholder
            if not _placeholders(s) <= wanted or not (wanted - {"{n}"}) <= _placeholders(s):
                wrong_placeholders.append((m.id, s))
    assert missing == [], f"{lang}: not in the catalogue (run make messages, translate)"
    assert untranslated == [] and fuzzy == []
    assert wrong_placeholders == []


@pytest.mark.parametrize("lang", TRANSLATED)
def test_no_catalogue_keeps_messages_the_code_no_longer_says(extracted: Catalog, lang: str) -> None:
    said = {(m.id if isinstance(m.id, str) else m.id[0], m.context) for m in extracted if m.id}
    kept = {(m.id if isinstance(m.id, str) else m.id[0], m.context) for m in _po(lang) if m.id}
    assert kept - said == set()


def test_a_missing_message_would_fail(extracted: Catalog) -> None:
    """The check above is not vacuous: a message the code says and a catalogue lacks is
    found."""
    po = _po("de")
    assert po.get("Why we suggest this") is not None
    po.delete("Why we suggest this")
    assert any(po.get(m.id, context=m.context) is None for m in extracted if m.id)


def test_the_schema_offers_the_shipped_languages() -> None:
    field = Preferences.model_fields["language"].annotation
    assert set(get_args(get_args(field)[0])) == set(LANGUAGES)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("de-CH,de;q=0.9,en;q=0.8", "de"),
        ("fr-FR,fr;q=0.9", "fr"),
        ("es-ES,es;q=0.9,fr;q=0.5,de;q=0.4", "fr"),  # the first shipped one by weight
        ("en;q=0.1,de;q=0.9", "de"),
        ("de;q=0", None),  # q=0: "not this one"
        ("ja, *;q=0.1", "en"),
        ("ja", None),
        ("", None),
        ("x" * 600, None),  # not read: longer than any browser sends
        ("de-;q=oops,fr", "fr"),  # a malformed part is skipped, not an error
    ],
)
def test_a_browser_s_language_is_negotiated(header: str, expected: str | None) -> None:
    assert i18n.negotiate(header) == expected


def test_a_person_s_choice_comes_before_the_browser_s() -> None:
    assert i18n.language_for("fr", "de-DE,de") == "fr"
    assert i18n.language_for(None, "de-DE,de") == "de"
    assert i18n.language_for(None, None) == "en"
    assert i18n.language_for("xx", None) == "en"  # unknown: the default


def test_each_language_s_plural_rules() -> None:
    # the same count, three rules: English and German say "0 replies", French "0 réponse"
    one = {lang: sentences._kind(i18n.words(lang), "reply", 1) for lang in LANGUAGES}
    zero = {lang: sentences._kind(i18n.words(lang), "reply", 0) for lang in LANGUAGES}
    assert one == {"en": "1 reply", "de": "1 Antwort", "fr": "1 réponse"}
    assert zero == {"en": "0 replies", "de": "0 Antworten", "fr": "0 réponse"}
    big = sentences._kind(i18n.words("fr"), "reply", 2_000_000)
    assert big == "2\u202f000\u202f000 de réponses"  # French: "de" after a million


def test_numbers_dates_and_lists_are_the_locale_s() -> None:
    from datetime import UTC, datetime

    t = datetime(2026, 12, 9, 12, 30, tzinfo=UTC)
    en, de, fr = (i18n.words(lang, "Europe/Berlin") for lang in ("en", "de", "fr"))
    assert (en.number(1234), de.number(1234), fr.number(1234)) == ("1,234", "1.234", "1\u202f234")
    assert en.list(["a", "b", "c"]) == "a, b, and c"
    assert de.list(["a", "b", "c"]) == "a, b und c"
    assert fr.list(["a", "b"]) == "a et b"
    assert de.datetime(t) == "Mi., 9. Dez., 13:30"  # Berlin is an hour ahead in December
    assert fr.date(t) == "9 décembre 2026"
