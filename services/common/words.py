"""Words in a person's language (pure: no I/O imports; ``services.common.i18n`` loads the
catalogues and hands them in).

Every sentence a person reads is written in English in the code, as a gettext message id,
and looked up in the person's catalogue when it is said: ``words.gettext("Not now.")``,
``words.ngettext("{n} reply", "{n} replies", n).format(n=words.number(n))``. Numbers, dates,
times and lists are formatted by Babel in the person's locale and time zone. `ENGLISH` needs
no catalogue (the message ids are the English text), so the matcher's core can write its
English sentence without reading a file.

``pybabel extract`` finds the messages by these method names (``gettext``, ``ngettext``,
``pgettext``) and by `N_`, the marker for a constant said later (a problem's title).
"""

from __future__ import annotations

import gettext as _gettext
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_date, format_skeleton, format_time
from babel.lists import format_list
from babel.numbers import format_decimal, format_percent

ListStyle = Literal["standard", "or"]

#: the languages shipped, by their catalogue's name; the first is the default
LANGUAGES: Final[tuple[str, ...]] = ("en", "de", "fr")
DEFAULT: Final = "en"


def N_(message: str) -> str:
    """A message id said later, in the reader's language (marked for ``pybabel extract``)."""
    return message


@dataclass(frozen=True)
class Words:
    """What a person reads, in their language (``locale``) and time zone (``zone``)."""

    language: str = DEFAULT
    catalogue: _gettext.NullTranslations = field(
        default_factory=_gettext.NullTranslations, compare=False, repr=False
    )
    zone: str = "UTC"

    @property
    def locale(self) -> Locale:
        return _locale(self.language)

    @property
    def tz(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.zone)
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")

    def in_zone(self, zone: str | None) -> Words:
        return self if not zone or zone == self.zone else Words(self.language, self.catalogue, zone)

    # -- messages ---------------------------------------------------------------------------

    def gettext(self, message: str) -> str:
        return self.catalogue.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """The form of ``n`` by the language's plural rules (German and English: one or
        other; French: 0 and 1 are singular)."""
        return self.catalogue.ngettext(singular, plural, n)

    def pgettext(self, context: str, message: str) -> str:
        return self.catalogue.pgettext(context, message)

    # -- numbers, lists, dates ----------------------------------------------------------------

    def number(self, n: float) -> str:
        return format_decimal(n, locale=self.locale)

    def percent(self, share: float) -> str:
        return format_percent(share, locale=self.locale)

    def list(self, items: Iterable[str], style: ListStyle = "standard") -> str:
        """``a, b and c`` as the language joins them (``standard``: "and";
        ``or``: "or")."""
        shown = [i for i in items if i]
        return format_list(shown, style=style, locale=self.locale) if shown else ""

    def date(self, d: date | datetime, format: str = "long") -> str:
        if isinstance(d, datetime):
            d = d.astimezone(self.tz).date()
        return format_date(d, format=format, locale=self.locale)

    def time(self, t: datetime, format: str = "short") -> str:
        return format_time(t.astimezone(self.tz), format=format, locale=self.locale)

    def datetime(self, t: datetime) -> str:
        """A time in this person's zone, weekday first ("Wed, Dec 9, 12:30 PM", "Mi., 9. Dez.,
        12:30"): CLDR's own patterns, so each language orders and names its parts itself."""
        local = t.astimezone(self.tz)
        day = format_skeleton("MMMEd", local, locale=self.locale)
        hour = format_time(local, format="short", locale=self.locale)
        joined: str = self.locale.datetime_formats["medium"].format(hour, day)
        return joined


def _locale(language: str) -> Locale:
    return _LOCALES.get(language) or _LOCALES[DEFAULT]


_LOCALES: Final[dict[str, Locale]] = {lang: Locale.parse(lang) for lang in LANGUAGES}

#: English: the message ids themselves, no catalogue needed
ENGLISH: Final = Words()
